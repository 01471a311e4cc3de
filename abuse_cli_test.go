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
	out, _, err := in.run(t, nil, "clients", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"orders": "any", "billing": "own"}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	col := strings.Index(lines[0], "INTROSPECT")
	if col < 0 {
		t.Fatalf("clients list has no INTROSPECT column:\n%s", out)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if w, ok := want[f[0]]; ok {
			if got := strings.Fields(l[col:])[0]; got != w {
				t.Errorf("%s: INTROSPECT %q, want %q\n%s", f[0], got, w, out)
			}
			delete(want, f[0])
		}
	}
	if len(want) != 0 {
		t.Errorf("clients list lacks %v:\n%s", want, out)
	}
}
