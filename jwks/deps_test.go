package jwks_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps package jwks cheap to import for resource
// servers: besides the standard library it may depend only on jwx and what
// jwx itself needs, and never on a web framework (Echo lives in
// jwks/echojwks).
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	list := func(args ...string) []string {
		out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
		if err != nil {
			t.Fatalf("go list %q: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	const self = "github.com/keygate/keygate/jwks"
	var jwx []string
	for _, imp := range list("-f", `{{join .Imports " "}}`, self) {
		if strings.HasPrefix(imp, "github.com/lestrrat-go/jwx/") {
			jwx = append(jwx, imp)
		}
	}
	allowed := map[string]bool{self: true}
	for _, p := range list(append([]string{"-deps"}, jwx...)...) {
		allowed[p] = true
	}
	for _, p := range list("-deps", self) {
		if strings.Contains(p, "labstack/echo") {
			t.Errorf("jwks depends on Echo (%s); the Echo adapter belongs in jwks/echojwks", p)
		}
		if first, _, _ := strings.Cut(p, "/"); !strings.Contains(first, ".") || allowed[p] {
			continue // standard library, or jwx and its dependencies
		}
		t.Errorf("jwks depends on %s, which is neither the standard library nor needed by jwx", p)
	}
}
