package main

import (
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/store/sqlite"
)

// TestCLIThirdPartyClient: clients add --third-party marks a client third
// party (its users see the consent page), and clients update --first-party
// and --third-party switch it.
func TestCLIThirdPartyClient(t *testing.T) {
	in := newInitialized(t, "")
	in.must(t, "clients", "add", "photos", "--third-party", "--grant", "authorization_code,refresh_token",
		"--scope", "openid,profile", "--redirect-uri", "https://photos.example/cb")
	in.must(t, "clients", "add", "ours", "--grant", "authorization_code", "--redirect-uri", "https://ours.example/cb")
	thirdParty := func(id string) bool {
		t.Helper()
		s, err := sqlite.Open(t.Context(), filepath.Join(in.dir, "data", "keygate.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c, err := s.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return c.ThirdParty
	}
	if !thirdParty("photos") || thirdParty("ours") {
		t.Errorf("after add: photos third party %v, ours %v; want true, false", thirdParty("photos"), thirdParty("ours"))
	}
	in.must(t, "clients", "update", "photos", "--first-party")
	in.must(t, "clients", "update", "ours", "--third-party")
	if thirdParty("photos") || !thirdParty("ours") {
		t.Errorf("after update: photos third party %v, ours %v; want false, true", thirdParty("photos"), thirdParty("ours"))
	}
	if _, _, err := in.run(t, nil, "clients", "update", "ours", "--third-party", "--first-party"); err == nil {
		t.Error("--third-party with --first-party accepted")
	}
}
