package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestRevokeKIDStartingWithDash: a kid that begins with '-' is read as a flag
// unless it follows --; the error says so. (With --, the kid reaches the key
// manager: TestCLIWhileServerRuns in the root package.)
func TestRevokeKIDStartingWithDash(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"--config", "/nonexistent/config.yaml", "keys", "revoke", "-Xb3kQ9"}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "keygate keys revoke -- KID") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}
