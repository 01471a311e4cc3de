package web_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/version"
)

// TestHealthAndSchema: /healthz names the build's version and the schema's
// migration level and nothing else; /readyz fails, saying why, while the
// database's migration level is not this binary's, behind or ahead (the
// schema_migrations table of the real database file edited under the
// running server), and is ready again once it is.
func TestHealthAndSchema(t *testing.T) {
	s := kgtest.Start(t, kgtest.Options{})
	get := func(path string) (int, map[string]any) {
		resp, body := kgtest.Send(t, nil, http.MethodGet, s.URL+path, nil, nil)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("GET %s: %d %q: %v", path, resp.StatusCode, body, err)
		}
		return resp.StatusCode, m
	}
	applied, known, err := s.Store.SchemaVersion(t.Context())
	if err != nil || applied != known || known < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v", applied, known, err)
	}
	st, h := get("/healthz")
	if st != 200 || h["status"] != "ok" || h["version"] != version.Get().Version || h["schema_version"] != float64(known) || len(h) != 3 {
		t.Errorf("/healthz = %d %v, want status, version %q and schema_version %d only", st, h, version.Get().Version, known)
	}

	db, err := sql.Open("sqlite", s.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, c := range []struct {
		name, edit, undo, want string
		status                 int // ahead stays ready: a rolling upgrade must not empty the pool
	}{
		{"ahead", `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'now')`, `DELETE FROM schema_migrations WHERE version = ?`, "ahead:", 200},
		{"behind", `DELETE FROM schema_migrations WHERE version = ? - 1`, `INSERT INTO schema_migrations (version, applied_at) VALUES (? - 1, 'again')`, "behind:", 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			exec(c.edit, known+1)
			st, r := get("/readyz")
			checks, _ := r["checks"].(map[string]any)
			if msg, _ := checks["schema"].(string); st != c.status || !strings.HasPrefix(msg, c.want) {
				t.Errorf("/readyz with the schema %s: %d %v, want %d and schema %q…", c.name, st, r, c.status, c.want)
			}
			exec(c.undo, known+1)
			if st, r := get("/readyz"); st != 200 {
				t.Errorf("/readyz with the schema restored: %d %v", st, r)
			}
		})
	}
}
