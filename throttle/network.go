package throttle

import "net/netip"

// NetworkKey is the part of a client address that per-address limits count:
// an IPv4 address (or an IPv4-mapped IPv6 one) as it is, and an IPv6 address
// as its /64 prefix. One IPv6 subscriber, host or cloud instance is routinely
// given a whole /64 and can pick any of its 2^64 addresses for each request;
// counting them one by one would hand such an attacker a fresh budget per
// guess, while a /64 is the smallest block that is one customer (RFC 6177,
// RFC 7421). Anything that does not parse as an address is returned as it is,
// so it still gets a budget of its own.
func NetworkKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip.WithZone(""), 64).Masked().String()
}
