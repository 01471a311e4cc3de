package idp

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Origins a client's browser scripts run at (CORS): which web pages may read
// its answers from /token, /revoke and /userinfo.

// CanonicalOrigin returns the origin of an http(s) URL as a browser sends it
// in the Origin header (RFC 6454: lower-case scheme and host, no default
// port) and whether it may be allowed at all: https, or http only for
// localhost and loopback addresses (a plain-http page elsewhere can be
// rewritten by anyone on its path, so its scripts speak for nobody).
func CanonicalOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	switch {
	case host == "" || strings.Contains(host, "*") || !validPort(port):
		return "", false
	case scheme == "https" && port == "443", scheme == "http" && port == "80":
		port = ""
	}
	if scheme != "https" && (scheme != "http" || !isLoopbackHost(host)) {
		return "", false
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkAllowedOrigins: each allowed origin is exactly scheme://host[:port] as
// a browser sends it (no path, query, fragment, user or wildcard), https or
// loopback http.
func checkAllowedOrigins(c *Client, _ ClientLimits) error {
	for _, o := range c.AllowedOrigins {
		canon, ok := CanonicalOrigin(o)
		switch {
		case strings.Contains(o, "*"):
			return badClient("allowed_origins", "%q: wildcards are not allowed; list each origin", o)
		case !ok:
			return badClient("allowed_origins", "%q is not an https origin (http only for localhost and loopback addresses), such as https://app.example.com", o)
		case canon != o:
			return badClient("allowed_origins", "%q must be written as a browser sends it, scheme://host[:port] without a path: %q", o, canon)
		}
	}
	return nil
}

// Origins are the web origins whose scripts may read c's answers: its
// AllowedOrigins or, when it has none, the origins of its http(s) redirect
// URIs that CanonicalOrigin accepts (so never a plain-http one but for
// loopback). The result is sorted and without duplicates.
func (c *Client) Origins() []string {
	if len(c.AllowedOrigins) > 0 {
		out := slices.Clone(c.AllowedOrigins)
		slices.Sort(out)
		return slices.Compact(out)
	}
	var out []string
	for _, ru := range c.RedirectURIs {
		if o, ok := CanonicalOrigin(ru); ok {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// AllowsOrigin reports whether a script at origin (an Origin header, compared
// exactly) may read c's answers.
func (c *Client) AllowsOrigin(origin string) bool {
	return origin != "" && slices.Contains(c.Origins(), origin)
}
