package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestBackupAndRestore takes `keygate backup` of a serving SQLite instance
// while token requests are in flight, restores it into a new directory (the
// backup copied to the database path, the same key-encryption key beside it)
// and starts a server there: it publishes the same JWKS and issues tokens to
// the client registered before the backup, signed by the same key. Without
// the key-encryption key the restored database does not start.
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	in := newInitialized(t, "")
	secret := clientSecret(in.must(t, "clients", "add", "svc", "--grant", "client_credentials"))
	s := in.serve(t)
	_, etag := s.jwks(t)

	// Requests in flight throughout the backup.
	finish := requestTokens(t, s.url, secret)
	dest := filepath.Join(t.TempDir(), "keygate-backup.db")
	out, errOut, err := in.run(t, nil, "backup", dest)
	if failed := finish(); failed != 0 {
		t.Errorf("%d token requests failed during the backup", failed)
	}
	if err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"backup: wrote " + dest, "key-set version", s.kid, "NOT in the backup", "keygate.kek"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup output lacks %q:\n%s", want, out)
		}
	}
	fi, err := os.Stat(dest)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	before, _ := os.ReadFile(dest)
	if out, errOut, err := in.run(t, nil, "backup", dest); err == nil || !strings.Contains(errOut, "already exists") {
		t.Errorf("backup over an existing file: %v\n%s%s", err, out, errOut)
	}
	if after, _ := os.ReadFile(dest); !bytes.Equal(before, after) {
		t.Error("a refused backup changed the existing file")
	}
	s.stop(t)

	// Restore: the backup at the new instance's database path, the KEK beside it.
	re := newInstance(t, "")
	restore(t, dest, filepath.Join(re.dir, "data", "keygate.db"))
	noKEK := newInstance(t, "")
	restore(t, dest, filepath.Join(noKEK.dir, "data", "keygate.db"))
	restore(t, filepath.Join(in.dir, "data", "keygate.kek"), filepath.Join(re.dir, "data", "keygate.kek"))

	r := re.serve(t)
	if _, etag2 := r.jwks(t); etag2 != etag || r.kid != s.kid {
		t.Errorf("restored server: etag %s kid %s, want %s %s", etag2, r.kid, etag, s.kid)
	}
	code, tok := tokenRequest(r.url, "svc", secret)
	if code != 200 {
		t.Fatalf("restored server: /token = %d %v", code, tok)
	}
	if kid := tokenKID(t, tok["access_token"]); kid != s.kid {
		t.Errorf("restored server signed with %s, want %s", kid, s.kid)
	}

	// Without the KEK the backup's keys cannot be opened, and no new KEK
	// is made in its place.
	if _, errOut, err := noKEK.run(t, nil, "serve"); err == nil || !strings.Contains(errOut, "database already holds signing keys sealed under it") {
		t.Errorf("restored database without its KEK: %v\n%s", err, errOut)
	}
}

// TestBackupRefusesWithoutDatabase: backing up an instance that has no
// database fails and creates none; on PostgreSQL it points at pg_dump.
func TestBackupRefusesWithoutDatabase(t *testing.T) {
	t.Parallel()
	in := newInstance(t, "")
	dest := filepath.Join(in.dir, "b.db")
	if out, errOut, err := in.run(t, nil, "backup", dest); err == nil || !strings.Contains(errOut, "no database at") {
		t.Errorf("backup without a database: %v\n%s%s", err, out, errOut)
	}
	for _, p := range []string{"data/keygate.db", "data", "b.db"} {
		if _, err := os.Stat(filepath.Join(in.dir, p)); err == nil {
			t.Errorf("backup without a database created %s", p)
		}
	}

	pg := newInstance(t, "storage:\n  driver: postgres\n  dsn: postgres://keygate@127.0.0.1:1/keygate\n")
	if out, errOut, err := pg.run(t, nil, "backup", dest); err == nil || !strings.Contains(errOut, "pg_dump --format=custom") {
		t.Errorf("backup on postgres: %v\n%s%s", err, out, errOut)
	}
}

// requestTokens keeps two clients asking base for tokens, from once five
// have been issued until the returned func is called, which reports how many
// requests failed.
func requestTokens(t *testing.T, base, secret string) (finish func() (failed int64)) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var issued, failed atomic.Int64
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if code, _ := tokenRequest(base, "svc", secret); code == 200 {
					issued.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	waitFor(t, func() bool { return issued.Load() >= 5 || failed.Load() > 0 }, "tokens to be issued")
	return func() int64 {
		close(stop)
		wg.Wait()
		return failed.Load()
	}
}

// clientSecret finds the secret in `clients add` output.
func clientSecret(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "client_secret:" {
			return f[1]
		}
	}
	return ""
}

// tokenRequest asks base for a client_credentials token for client; it is
// safe to call from any goroutine (a transport error is status 0).
func tokenRequest(base, client, secret string) (int, map[string]any) {
	req, _ := http.NewRequest("POST", base+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// tokenKID returns the kid in a JWT's header.
func tokenKID(t *testing.T, tok any) string {
	t.Helper()
	s, _ := tok.(string)
	head, _, _ := strings.Cut(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct{ Kid string }
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("not a JWT: %q", s)
	}
	return h.Kid
}

// restore copies the file src to dst, creating dst's directory, as an
// operator restoring a backup would.
func restore(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
