package jwks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// defaultDPoPNonceLifetime is MiddlewareConfig.DPoPNonceLifetime's default.
const defaultDPoPNonceLifetime = 5 * time.Minute

// minDPoPNonceSecret is the shortest DPoPNonceSecret accepted: a nonce
// must not be guessable, and the secret is the only thing it depends on
// besides the clock.
const minDPoPNonceSecret = 32

// dpopNonces are a resource server's DPoP nonces (RFC 9449 §9): the nonce of
// a time slot is base64url of the first 16 bytes of HMAC-SHA256(secret,
// "jwks dpop nonce" || slot), so replicas with one secret agree without
// sharing any state, and nothing is stored per client.
type dpopNonces struct {
	secret   []byte
	lifetime time.Duration
}

// nonceSettings are mc's nonces, nil when it sets neither nonce field.
func nonceSettings(mc MiddlewareConfig) (*dpopNonces, error) {
	if mc.DPoPNonceSecret == nil && mc.DPoPNonceLifetime == 0 {
		return nil, nil
	}
	return newDPoPNonces(mc.DPoPNonceSecret, orDefault(mc.DPoPNonceLifetime, defaultDPoPNonceLifetime))
}

func newDPoPNonces(secret []byte, lifetime time.Duration) (*dpopNonces, error) {
	switch {
	case len(secret) < minDPoPNonceSecret:
		return nil, fmt.Errorf("DPoPNonceSecret: %d bytes, want at least %d", len(secret), minDPoPNonceSecret)
	case lifetime < time.Second:
		return nil, fmt.Errorf("DPoPNonceLifetime: %s, want at least a second", lifetime)
	}
	return &dpopNonces{secret: append([]byte(nil), secret...), lifetime: lifetime}, nil
}

func (n *dpopNonces) slot(now time.Time) int64 { return now.UnixNano() / int64(n.lifetime) }

func (n *dpopNonces) of(slot int64) string {
	mac := hmac.New(sha256.New, n.secret)
	mac.Write([]byte("jwks dpop nonce"))
	mac.Write(binary.BigEndian.AppendUint64(nil, uint64(slot)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// current is the nonce clients must use now.
func (n *dpopNonces) current(now time.Time) string { return n.of(n.slot(now)) }

// valid reports whether s is the nonce of now's slot or of the previous
// one, so that a nonce handed out just before the slot changed stays good.
func (n *dpopNonces) valid(s string, now time.Time) bool {
	slot := n.slot(now)
	return s != "" && (hmac.Equal([]byte(s), []byte(n.of(slot))) || hmac.Equal([]byte(s), []byte(n.of(slot-1))))
}
