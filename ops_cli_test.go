package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// runStdin runs a keygate command with stdin (a password) to completion.
func (in *instance) runStdin(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := in.command(nil, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// cliAuditLines returns the "admin action" lines of a command's JSON log.
func cliAuditLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "admin action" {
			out = append(out, m)
		}
	}
	return out
}

// TestCLIAuditAndLastAdmin runs every write command of the built binary and
// checks that each logs exactly one "admin action" line (actor "cli", the
// operating-system user, the action, the target, the outcome) without the
// password it read; that reads log none; and that the last enabled admin
// cannot be demoted, disabled or deleted (a refusal that says what to do, is
// audited as refused, and changes nothing), until another admin exists.
func TestCLIAuditAndLastAdmin(t *testing.T) {
	in := newInitialized(t, "")
	const pw = "correct horse battery staple"
	kid := in.keys(t)[0].KID
	for _, c := range []struct {
		args    []string
		stdin   string
		action  string // "" for a read: no audit line
		target  string
		outcome string
		stderr  string // in the refusal
	}{
		{[]string{"users", "add", "root", "--admin"}, pw + "\n", "users add", "root", "ok", ""},
		{[]string{"users", "add", "alice"}, pw + "\n", "users add", "alice", "ok", ""},
		{[]string{"users", "list"}, "", "", "", "", ""},
		{[]string{"users", "update", "root", "--no-admin"}, "", "users update", "root", "refused", "make another user an admin first"},
		{[]string{"users", "update", "root", "--disable"}, "", "users update", "root", "refused", "make another user an admin first"},
		{[]string{"users", "delete", "root"}, "", "users delete", "root", "refused", "make another user an admin first"},
		{[]string{"users", "update", "alice", "--name", "Alice"}, "", "users update", "alice", "ok", ""},
		{[]string{"users", "passwd", "alice"}, pw + " 2\n", "users passwd", "alice", "ok", ""},
		{[]string{"users", "reset-mfa", "alice"}, "", "users reset-mfa", "alice", "ok", ""},
		{[]string{"users", "update", "alice", "--admin"}, "", "users update", "alice", "ok", ""},
		{[]string{"users", "update", "root", "--no-admin"}, "", "users update", "root", "ok", ""},
		{[]string{"users", "delete", "alice"}, "", "users delete", "alice", "refused", "make another user an admin first"},
		{[]string{"clients", "add", "billing", "--grant", "client_credentials"}, "", "clients add", "billing", "ok", ""},
		{[]string{"clients", "list"}, "", "", "", "", ""},
		{[]string{"clients", "update", "billing", "--name", "Billing"}, "", "clients update", "billing", "ok", ""},
		{[]string{"clients", "update", "billing", "--allow-bare-assertion", "--no-allow-bare-assertion"}, "", "clients update", "billing", "refused", "contradict"},
		{[]string{"clients", "rotate-secret", "billing"}, "", "clients rotate-secret", "billing", "ok", ""},
		{[]string{"clients", "delete", "billing"}, "", "clients delete", "billing", "ok", ""},
		{[]string{"clients", "delete", "billing"}, "", "clients delete", "billing", "refused", "not found"},
		{[]string{"keys", "list"}, "", "", "", "", ""},
		{[]string{"keys", "rotate", "--force"}, "", "keys rotate", "-", "ok", ""},
		{[]string{"keys", "revoke", "--", kid}, "", "keys revoke", kid, "ok", ""},
		{[]string{"keys", "rewrap"}, "", "keys rewrap", "-", "ok", ""},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, errOut, err := in.runStdin(t, c.stdin, c.args...)
			if (err == nil) != (c.outcome != "refused") || !strings.Contains(errOut, c.stderr) {
				t.Fatalf("keygate %s: %v, want outcome %q with %q\n%s%s", strings.Join(c.args, " "), err, c.outcome, c.stderr, out, errOut)
			}
			lines := cliAuditLines(t, errOut)
			if c.action == "" {
				if len(lines) != 0 {
					t.Fatalf("a read logged %v", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("%d audit lines, want 1:\n%s", len(lines), errOut)
			}
			l := lines[0]
			if l["actor"] != "cli" || l["os_user"] == "" || l["action"] != c.action || l["target"] != c.target || l["outcome"] != c.outcome {
				t.Errorf("audit line %v, want action %q, target %q, outcome %q", l, c.action, c.target, c.outcome)
			}
			if strings.Contains(errOut, "horse") || (strings.Contains(out, "client_secret:") && strings.Contains(errOut, secretOf(t, out))) {
				t.Errorf("the log holds a secret:\n%s", errOut)
			}
		})
	}
	out := in.must(t, "users", "list")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "alice ") || strings.Contains(l, " alice ") {
			if !strings.Contains(l, "true") {
				t.Errorf("alice is no longer the admin: %q", l)
			}
		}
	}
}
