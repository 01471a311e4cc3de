package rotation

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"time"

	"github.com/keygate/keygate/store"
)

// KeyView is one key as operators see it: the admin API's JSON and the
// "keys list" command's table. It carries no key material.
type KeyView struct {
	KID        string     `json:"kid"`
	State      string     `json:"state"`
	Algorithm  string     `json:"alg"`
	Bits       int        `json:"bits"`
	CreatedAt  time.Time  `json:"created_at"`
	ActivateAt time.Time  `json:"activate_at"`
	RetireAt   time.Time  `json:"retire_at"`
	RemoveAt   time.Time  `json:"remove_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Published  bool       `json:"published"`
	Signing    bool       `json:"signing"`
}

// ViewKeys describes keys for display, in the order given, times in UTC.
func ViewKeys(keys []Key) []KeyView {
	out := make([]KeyView, 0, len(keys))
	for _, k := range keys {
		v := KeyView{KID: k.KID, State: string(k.State), Algorithm: k.Algorithm,
			CreatedAt: k.CreatedAt.UTC(), ActivateAt: k.ActivateAt.UTC(), RetireAt: k.RetireAt.UTC(), RemoveAt: k.RemoveAt.UTC(),
			Published: k.State != store.KeyRevoked, Signing: k.State == store.KeyActive}
		switch pub := k.Public.(type) {
		case *rsa.PublicKey:
			v.Bits = pub.N.BitLen()
		case *ecdsa.PublicKey:
			v.Bits = pub.Curve.Params().BitSize
		case ed25519.PublicKey:
			v.Bits = 256
		}
		if !k.RevokedAt.IsZero() {
			t := k.RevokedAt.UTC()
			v.RevokedAt = &t
		}
		out = append(out, v)
	}
	return out
}
