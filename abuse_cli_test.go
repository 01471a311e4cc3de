package main

import (
	"strings"
	"testing"
)

// TestClientsAddIntrospect: `clients add --introspect` registers a resource
// server, `clients list` shows who may introspect what, and a public client
// is refused the flag by the one client validation.
func TestClientsAddIntrospect(t *testing.T) {
	t.Parallel()
	in := newInitialized(t, "")
	in.must(t, "clients", "add", "orders", "--grant", "client_credentials", "--introspect")
	in.must(t, "clients", "add", "billing", "--grant", "client_credentials")
	if _, errOut, err := in.run(t, nil, "clients", "add", "spa", "--public", "--grant", "password", "--introspect"); err == nil ||
		!strings.Contains(errOut, "introspect") {
		t.Errorf("a public client with --introspect: %v\n%s", err, errOut)
	}
	got := in.listColumn(t, "INTROSPECT")
	for id, w := range map[string]string{"orders": "any", "billing": "own"} {
		if got[id] != w {
			t.Errorf("%s: INTROSPECT %q, want %q (%v)", id, got[id], w, got)
		}
	}
}
