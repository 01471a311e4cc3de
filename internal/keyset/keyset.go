// Package keyset is the glue between key rotation and key-set publication:
// it turns a rotation snapshot into the served JWKS document whenever the
// key set changes. The server wiring (and test servers) install Republish as
// rotation's OnChange callback.
package keyset

import (
	"log/slog"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/rotation"
)

// Republish returns a rotation.Config.OnChange callback that re-serializes the
// key set into p whenever it changes — the only time serialization happens.
func Republish(p *jwks.Publisher, log *slog.Logger) func(*rotation.Snapshot) {
	return func(s *rotation.Snapshot) {
		doc, err := s.Document()
		if err != nil {
			log.Error("key set not republished; serving the previous one", "err", err)
			return
		}
		p.Publish(doc)
		log.Info("key set published", "kids", doc.KIDs(), "etag", doc.ETag, "signing_kid", s.Signing.KID)
	}
}
