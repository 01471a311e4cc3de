package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/web"
)

// auditLines returns the "admin action" lines logged to buf since offset.
func auditLines(t *testing.T, buf *kgtest.LogBuffer, offset int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(buf.String()[offset:], "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "admin action" {
			out = append(out, m)
		}
	}
	return out
}

// TestAdminAuditLog: every write route of the admin API (all of them: the
// table must cover each non-GET /admin route the server has) logs exactly one
// "admin action" line naming the actor (the admin user's id, or "bootstrap
// token"), the route, the target and the outcome, refused writes included,
// and never the secrets involved (the bootstrap token, a new client secret,
// the admin's access token).
func TestAdminAuditLog(t *testing.T) {
	const bootstrap = "bootstrap-secret-0123456789abcdef0123456789"
	var logs kgtest.LogBuffer
	e := newAtkEnv(t, func(o *kgtest.Options) {
		o.AdminToken = bootstrap
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	ctx := context.Background()
	if _, err := e.IDP.Directory().RegisterClient(ctx, &idp.Client{ID: "billing", GrantTypes: []string{"client_credentials"}}, true); err != nil {
		t.Fatal(err)
	}
	admin := e.password(t, "root", atkRootPW, "admin").AccessToken
	kid := e.Keys.Current().Signing.KID

	cases := []struct {
		route, path, body, token string
		actor, target, outcome   string
	}{
		{"POST /admin/keys/rotate", "/admin/keys/rotate?force=true", "", admin, e.root.ID, "-", "ok"},
		{"PATCH /admin/clients/:id", "/admin/clients/billing", `{"name":"Billing"}`, admin, e.root.ID, "billing", "ok"},
		{"PATCH /admin/clients/:id", "/admin/clients/app", `{"name":"x"}`, admin, e.root.ID, "app", "refused"},
		{"POST /admin/clients/:id/rotate-secret", "/admin/clients/billing/rotate-secret", `{"grace":"0s"}`, bootstrap, web.ActorBootstrapToken, "billing", "ok"},
		{"PATCH /admin/users/:login", "/admin/users/alice", `{"disabled":true}`, admin, e.root.ID, "alice", "ok"},
		{"PATCH /admin/users/:login", "/admin/users/root", `{"admin":false}`, admin, e.root.ID, "root", "refused"},
		{"POST /admin/users/:login/reset-mfa", "/admin/users/alice/reset-mfa", "", admin, e.root.ID, "alice", "ok"},
		// Last, as revoking the key that signed the admin's token ends it.
		{"POST /admin/keys/:kid/revoke", "/admin/keys/nokid/revoke", "", admin, e.root.ID, "nokid", "refused"},
		{"POST /admin/keys/:kid/revoke", "/admin/keys/" + kid + "/revoke", "", bootstrap, web.ActorBootstrapToken, kid, "ok"},
	}
	srv := e.HTTP.Config.Handler.(*web.Server)
	for _, r := range srv.Routes() {
		method, path, _ := strings.Cut(r, " ")
		if !strings.HasPrefix(path, "/admin/") || !slices.Contains([]string{"POST", "PUT", "PATCH", "DELETE"}, method) {
			continue
		}
		if !slices.ContainsFunc(cases, func(c struct{ route, path, body, token, actor, target, outcome string }) bool { return c.route == r }) {
			t.Errorf("admin write route %s is not in this test's table", r)
		}
	}
	for _, c := range cases {
		t.Run(c.route+" "+c.outcome, func(t *testing.T) {
			method, _, _ := strings.Cut(c.route, " ")
			offset := len(logs.String())
			reply := e.adminCall(t, c.token, method, c.path, c.body)
			if (reply.status < 400) != (c.outcome == "ok") {
				t.Fatalf("%s %s: %d %s, want outcome %s", method, c.path, reply.status, reply.body, c.outcome)
			}
			lines := auditLines(t, &logs, offset)
			if len(lines) != 1 {
				t.Fatalf("%d audit lines, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			if l["actor"] != c.actor || l["action"] != c.route || l["target"] != c.target || l["outcome"] != c.outcome ||
				l["status"] != float64(reply.status) {
				t.Errorf("audit line %v, want actor %q, action %q, target %q, outcome %q, status %d", l, c.actor, c.route, c.target, c.outcome, reply.status)
			}
			if strings.HasPrefix(c.route, "PATCH ") {
				var body map[string]any
				_ = json.Unmarshal([]byte(c.body), &body)
				if got, want := fmt.Sprint(l["fields"]), fmt.Sprint(slices.Sorted(maps.Keys(body))); got != want {
					t.Errorf("audit fields %s, want %s", got, want)
				}
			}
			logged := logs.String()[offset:]
			secrets := []string{bootstrap, admin}
			if s, _ := reply.object(t)["client_secret"].(string); s != "" {
				secrets = append(secrets, s)
			}
			for _, s := range secrets {
				if strings.Contains(logged, s) {
					t.Errorf("the log holds a secret (%.8s…): %s", s, logged)
				}
			}
		})
	}
	// Reads are not audited.
	offset := len(logs.String())
	wantAdminStatus(t, "GET /admin/users", e.adminCall(t, bootstrap, "GET", "/admin/users", ""), 200)
	if lines := auditLines(t, &logs, offset); len(lines) != 0 {
		t.Errorf("a read logged %v", lines)
	}
}

// TestAdminLastAdmin: the admin API refuses to demote or disable the only
// enabled admin (409 naming what to do), with or without the bootstrap
// token configured; and when the last two admins step down at the same
// instant, each with their own token, over and over, exactly one passes.
func TestAdminLastAdmin(t *testing.T) {
	for _, bootstrap := range []string{"", adminToken} {
		t.Run(fmt.Sprintf("admin.token set %v", bootstrap != ""), func(t *testing.T) {
			e := newAtkEnv(t, func(o *kgtest.Options) { o.AdminToken = bootstrap })
			admin := e.password(t, "root", atkRootPW, "admin").AccessToken
			for _, body := range []string{`{"admin":false}`, `{"disabled":true}`, `{"admin":false,"disabled":true}`} {
				r := wantAdminStatus(t, "PATCH root "+body, e.adminCall(t, admin, "PATCH", "/admin/users/root", body), 409)
				if msg, _ := r.object(t)["error"].(string); !strings.Contains(msg, "make another user an admin first") {
					t.Errorf("refusal %q does not say what to do", msg)
				}
			}
			wantAdminStatus(t, "rename root", e.adminCall(t, admin, "PATCH", "/admin/users/root", `{"name":"Root"}`), 200)
			tokens := map[string]string{"root": admin, "alice": e.password(t, "alice", atkAlicePW, "admin").AccessToken}
			current := "root" // the admin whose token restores both each round
			for round := range 6 {
				for _, u := range []string{"root", "alice"} {
					wantAdminStatus(t, "restore "+u, e.adminCall(t, tokens[current], "PATCH", "/admin/users/"+u, `{"admin":true,"disabled":false}`), 200)
				}
				body := []string{`{"admin":false}`, `{"disabled":true}`}[round%2]
				replies := stampede.Run(2, func(i int) atkReply {
					u := []string{"root", "alice"}[i] // each steps down with their own token
					return e.adminCall(t, tokens[u], "PATCH", "/admin/users/"+u, body)
				})
				got := []int{replies[0].status, replies[1].status}
				slices.Sort(got)
				if got[0] != 200 || got[1] != 409 {
					t.Fatalf("round %d, concurrent %s of root and alice: %d %s / %d %s, want one 200 and one 409", round, body,
						replies[0].status, replies[0].body, replies[1].status, replies[1].body)
				}
				current = map[bool]string{true: "alice", false: "root"}[replies[0].status == 200]
			}
		})
	}
}
