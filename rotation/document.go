package rotation

import (
	"sync"

	"github.com/keygate/keygate/jwks"
)

// lazyDocument holds a snapshot's serialized key set, built on first use.
type lazyDocument struct {
	once sync.Once
	doc  *jwks.Document
	err  error
}

// Document returns the snapshot's published keys (every key but the revoked
// ones, in publication order) as a serialized JWKS. It is built once per
// snapshot and then shared, so the JWKS endpoint and the issuer's own token
// verification (jwks.NewLocalVerifier) see the very same key set, and a new
// set is serialized only when the key set changes.
func (s *Snapshot) Document() (*jwks.Document, error) {
	build := func() (*jwks.Document, error) {
		pub := s.Published()
		keys := make([]jwks.PublicKey, 0, len(pub))
		for _, k := range pub {
			keys = append(keys, jwks.PublicKey{KID: k.KID, Algorithm: k.Algorithm, Key: k.Public})
		}
		return jwks.NewDocument(keys)
	}
	if s.doc == nil { // a Snapshot not made by a Manager (tests)
		return build()
	}
	s.doc.once.Do(func() { s.doc.doc, s.doc.err = build() })
	return s.doc.doc, s.doc.err
}
