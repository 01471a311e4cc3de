package postgres

import (
	"testing"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
)

// TestUnstorableConsent checks that consents with text PostgreSQL cannot
// hold are refused as invalid input, and that reads and deletes by it find
// nothing rather than fail.
func TestUnstorableConsent(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	forEachUnstorableText(t, func(bad string, invalid, notFound func(what string, err error)) {
		invalid("UpsertConsent user", s.UpsertConsent(ctx, store.Consent{UserID: bad, ClientID: "c", UpdatedAt: backendtest.T0}))
		invalid("UpsertConsent client", s.UpsertConsent(ctx, store.Consent{UserID: "u", ClientID: bad, UpdatedAt: backendtest.T0}))
		_, err := s.GetConsent(ctx, "u", bad)
		notFound("GetConsent", err)
		notFound("DeleteConsent", s.DeleteConsent(ctx, bad, "c"))
		if cs, err := s.ListUserConsents(ctx, bad); err != nil || len(cs) != 0 || cs == nil {
			t.Errorf("ListUserConsents(%q) = %v, %v; want an empty list", bad, cs, err)
		}
		if n, err := s.RevokeUserClientRefreshTokens(ctx, bad, "c", backendtest.T0); err != nil || n != 0 {
			t.Errorf("RevokeUserClientRefreshTokens(%q) = %d, %v; want 0", bad, n, err)
		}
	})
}
