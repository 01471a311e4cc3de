package web_test

// Tests of what Keygate tells its operator: the failure log lines, the token
// and login counters, and /readyz when the store cannot write.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/web"
)

// logBuffer collects a server's log output (kgtest.LogBuffer, safe for its
// concurrent writers) and reads it back as JSON records.
type logBuffer struct{ kgtest.LogBuffer }

// lines are the JSON log records whose msg is msg.
func (l *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// find returns the first record with every field of want, failing the test
// without one.
func find(t *testing.T, recs []map[string]any, want map[string]any) map[string]any {
	t.Helper()
	for _, r := range recs {
		ok := true
		for k, v := range want {
			if r[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return r
		}
	}
	t.Errorf("no log record with %v among %d", want, len(recs))
	return nil
}

// obsScenario runs failing and succeeding requests carrying secrets, tokens,
// codes, assertions and passwords against a server logging JSON (debug level)
// into logs, and returns the env and every secret string it sent.
func obsScenario(t *testing.T) (*tkEnv, *logBuffer, []string) {
	t.Helper()
	logs := &logBuffer{}
	e := newTkEnv(t, kgtest.Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ck, otherKey := clientKeys()
	const (
		wrongPW      = "hunter2-wrong-password-Zq"
		pwAsLogin    = "Tr0ub4dor&3-typed-as-username"
		wrongSecret  = "wrong-client-secret-7Hk"
		fakeCode     = "authcode-secret-0123456789"
		fakeRefresh  = "refresh-secret-abcdefghij"
		formWrongPW  = "form-wrong-password-Pp9"
		formPWAsUser = "form-password-in-username-Qx"
	)
	good := e.password(t, "script", "alice", tkAlicePW, "")
	badAssertion := signRS256(t, otherKey, e.assertionClaims("keyed", e.URL+"/token"))
	badScript := signRS256(t, otherKey, jwt.MapClaims{"iss": "client"})
	goodScript := signRS256(t, ck, jwt.MapClaims{"iss": "client"})
	secrets := []string{tkAlicePW, wrongPW, pwAsLogin, wrongSecret, fakeCode, fakeRefresh, formWrongPW, formPWAsUser,
		e.secret["script"], e.secret["svc"], e.secret["other"], good.AccessToken, good.RefreshToken,
		badAssertion, badScript, goodScript}

	tok := func(r request) reply { r.path = "/token"; return e.do(t, r) }
	pw := func(login, pass string) url.Values {
		return formOf("grant_type", tkPW, "username", login, "password", pass)
	}
	steps := []struct {
		name   string
		res    reply
		status int
	}{
		{"wrong password", tok(request{form: pw("alice", wrongPW), basic: e.basic("script")}), 400},
		{"password as login", tok(request{form: pw(pwAsLogin, tkAlicePW), basic: e.basic("script")}), 400},
		{"wrong client secret", tok(request{form: formOf("grant_type", tkCC), basic: []string{"svc", wrongSecret}}), 401},
		{"secret posted as client id", tok(request{form: formOf("grant_type", tkCC, "client_id", e.secret["svc"], "client_secret", wrongSecret)}), 401},
		{"fake code", tok(request{form: formOf("grant_type", "authorization_code", "code", fakeCode, "redirect_uri", "https://x.example/cb"), basic: e.basic("script")}), 400},
		{"fake refresh token", tok(request{form: formOf("grant_type", tkRefresh, "refresh_token", fakeRefresh), basic: e.basic("script")}), 400},
		{"refresh token of another client", tok(request{form: formOf("grant_type", tkRefresh, "refresh_token", good.RefreshToken), basic: e.basic("other")}), 400},
		{"bad client assertion", tok(request{form: withClientAssertion(formOf("grant_type", tkCC), badAssertion)}), 401},
		{"bad jwt-bearer assertion", tok(request{form: formOf("grant_type", tkJWT, "assertion", badAssertion)}), 400},
		{"unknown grant", tok(request{form: formOf("grant_type", "urn:evil:grant"), basic: e.basic("script")}), 400},
		{"introspect, wrong secret", e.do(t, request{path: "/introspect", form: formOf("token", good.AccessToken), basic: []string{"svc", wrongSecret}}), 401},
		{"introspect", e.do(t, request{path: "/introspect", form: formOf("token", good.AccessToken), basic: e.basic("svc")}), 200},
		{"revoke, wrong secret", e.do(t, request{path: "/revoke", form: formOf("token", good.RefreshToken), basic: []string{"script", wrongSecret}}), 401},
		{"script login, wrong key", e.do(t, request{path: "/login/assertion", body: badScript, ctype: "application/jwt"}), 401},
		{"script login", e.do(t, request{path: "/login/assertion", body: goodScript, ctype: "application/jwt"}), 200},
	}
	for _, s := range steps {
		if s.res.status != s.status {
			t.Errorf("%s: %s, want %d", s.name, s.res, s.status)
		}
	}
	be := &brEnv{Server: e.Server, clock: e.clock}
	for _, login := range [][2]string{{"bob", formWrongPW}, {formPWAsUser, tkBobPW}} {
		b := be.browser(t)
		hidden := brLoginPage(t, b.get(t, "/login"))
		if r := b.submit(t, "/login", hidden, "username", login[0], "password", login[1]); r.status != 200 || !strings.Contains(string(r.body), `name="password"`) {
			t.Errorf("form login %s: %s, want the form again", login[0], r)
		}
	}
	return e, logs, secrets
}

// TestFailureLogs checks the failure lines: one per failed token,
// revocation and introspection request and per failed login, with the
// client, the grant, the error code and reason, the address and request ID;
// and that no secret, token, code, assertion or password sent in any request,
// failed or not, appears anywhere in the log.
func TestFailureLogs(t *testing.T) {
	t.Parallel()
	e, logs, secrets := obsScenario(t)

	// A 5xx: the store goes away under a token request.
	e.Store.Close()
	res := e.do(t, request{path: "/token", form: formOf("grant_type", tkPW, "username", "alice", "password", tkAlicePW), basic: e.basic("script")})
	if !wantOAuthError(t, res, http.StatusInternalServerError, "server_error", "") {
		t.Errorf("5xx from /token: %s", res)
	}
	if strings.Contains(string(res.body), "closed") || strings.Contains(string(res.body), "sql") {
		t.Errorf("the 5xx body shows the cause: %s", res.body)
	}

	out := logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the log carries a secret %.20q…", s)
		}
	}

	oauth := logs.lines(t, "oauth request failed")
	r := find(t, oauth, map[string]any{"endpoint": "/token", "grant_type": "password", "error": "invalid_grant",
		"client_id": "script", "client_id_is": "authenticated", "login_outcome": "invalid", "login_known": true, "username": "alice"})
	if r != nil {
		if r["level"] != "INFO" || r["remote_ip"] != "127.0.0.1" || r["request_id"] == "" || r["reason"] != "invalid username or password" || r["user_id"] != e.userID["alice"] {
			t.Errorf("wrong-password line: %v", r)
		}
		if _, ok := r["err"]; ok {
			t.Errorf("a 4xx line carries err: %v", r)
		}
	}
	find(t, oauth, map[string]any{"grant_type": "password", "error": "invalid_grant", "login_known": false})
	find(t, oauth, map[string]any{"grant_type": "client_credentials", "error": "invalid_client", "client_id": "svc", "client_id_is": "claimed"})
	find(t, oauth, map[string]any{"grant_type": "client_credentials", "error": "invalid_client", "client_known": false})
	find(t, oauth, map[string]any{"grant_type": "client_credentials", "error": "invalid_client", "client_id": "keyed", "client_id_is": "claimed"})
	find(t, oauth, map[string]any{"grant_type": "jwt_bearer", "error": "invalid_grant", "client_id": "keyed", "client_id_is": "claimed"})
	find(t, oauth, map[string]any{"grant_type": "authorization_code", "error": "unauthorized_client", "client_id": "script", "client_id_is": "authenticated"})
	find(t, oauth, map[string]any{"grant_type": "refresh_token", "error": "invalid_grant", "client_id": "other", "client_id_is": "authenticated"})
	find(t, oauth, map[string]any{"grant_type": "other", "error": "unsupported_grant_type"})
	find(t, oauth, map[string]any{"endpoint": "/introspect", "error": "invalid_client", "client_id": "svc"})
	find(t, oauth, map[string]any{"endpoint": "/revoke", "error": "invalid_client", "client_id": "script"})
	if r := find(t, oauth, map[string]any{"endpoint": "/token", "error": "server_error", "level": "ERROR"}); r != nil {
		if err, _ := r["err"].(string); !strings.Contains(err, "closed") {
			t.Errorf("the 5xx line lacks the underlying error: %v", r)
		}
	}
	if n := len(oauth); n != 13 {
		t.Errorf("%d oauth failure lines, want 13 (one per failed request)", n)
	}
	if n := len(logs.lines(t, "request failed")); n != 0 {
		t.Errorf("the 5xx was logged again by the error writer (%d lines)", n)
	}

	logins := logs.lines(t, "login failed")
	find(t, logins, map[string]any{"method": "script", "outcome": "invalid", "client_id": "client", "client_id_is": "claimed"})
	find(t, logins, map[string]any{"method": "form", "outcome": "invalid", "login_known": true, "username": "bob"})
	find(t, logins, map[string]any{"method": "form", "outcome": "invalid", "login_known": false})
	if n := len(logins); n != 3 {
		t.Errorf("%d login failure lines, want 3", n)
	}
}

// TestTokenAndLoginMetrics checks keygate_tokens_issued_total,
// keygate_token_errors_total and keygate_logins_total after the scenario, and
// that no label carries request input.
func TestTokenAndLoginMetrics(t *testing.T) {
	t.Parallel()
	e, _, secrets := obsScenario(t)
	res := e.do(t, request{method: "GET", path: "/metrics"})
	m := string(res.body)
	// Each family's series, the logins grouped by method.
	for _, family := range []struct {
		name   string
		series []string
	}{
		{"keygate_tokens_issued_total", []string{`{grant="password"} 1`, `{grant="client_credentials"} 0`}},
		{"keygate_token_errors_total", []string{
			`{error="invalid_grant",grant="password"} 2`,
			`{error="invalid_client",grant="client_credentials"} 3`,
			`{error="unauthorized_client",grant="authorization_code"} 1`,
			`{error="invalid_grant",grant="refresh_token"} 2`,
			`{error="invalid_grant",grant="jwt_bearer"} 1`,
			`{error="unsupported_grant_type",grant="other"} 1`,
		}},
		{"keygate_logins_total", []string{
			`{method="password_grant",outcome="success"} 1`, `{method="password_grant",outcome="invalid"} 2`,
			`{method="form",outcome="invalid"} 2`, `{method="form",outcome="throttled"} 0`,
			`{method="script",outcome="invalid"} 1`, `{method="script",outcome="success"} 1`,
		}},
	} {
		for _, series := range family.series {
			if want := family.name + series; !strings.Contains(m, want+"\n") {
				t.Errorf("metrics lack %s", want)
			}
		}
	}
	for _, s := range append(secrets, "urn:evil") {
		if s != "" && strings.Contains(m, s) {
			t.Errorf("a metric label carries request input %.20q…", s)
		}
	}
}

// countingStore counts the write checks /readyz makes.
type countingStore struct {
	web.Pinger
	writes atomic.Int32
}

func (c *countingStore) CheckWritable(ctx context.Context) error {
	c.writes.Add(1)
	return c.Pinger.CheckWritable(ctx)
}

// TestReadyzStoreNotWritable: /readyz answers 503 with a reason while the
// store can be read but not written (the same database file opened
// query-only, which holds whoever runs the test, root included), and runs
// the write check at most once a second however often it is polled.
func TestReadyzStoreNotWritable(t *testing.T) {
	t.Parallel()
	ro := &countingStore{}
	s := kgtest.Start(t, kgtest.Options{Web: func(c *web.Config) {
		st, err := sqlite.Open(t.Context(), c.Store.(*sqlite.Store).Path(), sqlite.QueryOnly())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ro.Pinger = st
		c.Store = ro
	}})
	res := send(t, s.URL, request{method: "GET", path: "/readyz"})
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a read-only store: %s, want 503", res)
	}
	checks, _ := res.object(t)["checks"].(map[string]any)
	if w, _ := checks["store_writes"].(string); !strings.HasPrefix(w, "failing") || checks["store"] != "ok" {
		t.Errorf("/readyz checks %v, want store ok and store_writes failing", checks)
	}
	for range 20 {
		send(t, s.URL, request{method: "GET", path: "/readyz"})
	}
	if n := ro.writes.Load(); n > 2 { // one, or two if a second boundary fell inside
		t.Errorf("%d write checks for 21 polls, want at most one a second", n)
	}

	ok := kgtest.Start(t, kgtest.Options{})
	res = send(t, ok.URL, request{method: "GET", path: "/readyz"})
	if checks, _ := res.object(t)["checks"].(map[string]any); res.status != 200 || checks["store_writes"] != "ok" {
		t.Errorf("/readyz on a writable store: %s", res)
	}
}
