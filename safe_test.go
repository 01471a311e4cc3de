package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runIn runs the binary in dir with env added and no --config, as an
// operator would from a shell in that directory. KEYGATE_* variables of the
// test's own environment are left out.
func runIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// entries lists what dir holds.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestCommandsInAnEmptyDirectoryCreateNothing: from a directory with no
// config.yaml and no database, every command but serve and init refuses,
// saying where it looked and how to point it elsewhere, and creates nothing.
func TestCommandsInAnEmptyDirectoryCreateNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{{"keys", "list"}, {"keys", "rotate"}, {"keys", "rotate", "--force"}, {"keys", "revoke", "x"},
		{"clients", "list"}, {"clients", "add", "svc"}, {"users", "list"}, {"users", "delete", "alice"}} {
		out, errOut, err := runIn(t, dir, nil, args...)
		want := "no Keygate database at " + filepath.Join(dir, "data", "keygate.db") +
			" (run where config.yaml is, or pass --config / KEYGATE_CONFIG)"
		if err == nil || !strings.Contains(errOut, want) || out != "" {
			t.Errorf("%v: err %v, stdout %q, stderr %q; want the refusal %q", args, err, out, errOut, want)
		}
		if got := entries(t, dir); len(got) != 0 {
			t.Fatalf("%v created %v", args, got)
		}
	}
	// A file that is not a Keygate database is refused too, unchanged.
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "data", "keygate.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := runIn(t, dir, nil, "keys", "list"); err == nil || !strings.Contains(errOut, "no Keygate database at") {
		t.Errorf("keys list on an empty file: %v %s", err, errOut)
	}
	if got := entries(t, filepath.Join(dir, "data")); len(got) != 1 {
		t.Errorf("keys list on an empty file left %v", got)
	}
	if fi, _ := os.Stat(empty); fi.Size() != 0 {
		t.Errorf("keys list wrote %d bytes into the empty file", fi.Size())
	}
}

// TestInitCreatesOnceThenCommandsWork: init creates the database and the
// first keys; again, it changes nothing and says so; then the commands run.
func TestInitCreatesOnceThenCommandsWork(t *testing.T) {
	t.Parallel()
	in := newInstance(t, "")
	out, errOut, err := in.run(t, nil, "init")
	db := filepath.Join(in.dir, "data", "keygate.db")
	if err != nil || !strings.Contains(out, "created a Keygate database at "+db+"; signing key ") {
		t.Fatalf("init: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(errOut, `"msg":"configuration"`) || !strings.Contains(errOut, in.config) {
		t.Errorf("init does not log the configuration file in use:\n%s", errOut)
	}
	keys := in.keys(t)
	checkValid(t, keys, true)
	out, _, err = in.run(t, nil, "init")
	if err != nil || !strings.Contains(out, "a Keygate database already exists at "+db+"; nothing changed") {
		t.Errorf("second init: %v %q", err, out)
	}
	if again := in.keys(t); len(again) != len(keys) || again[0].KID != keys[0].KID {
		t.Errorf("the second init changed the keys: %v → %v", keys, again)
	}
	if _, errOut, err := in.run(t, nil, "clients", "add", "svc"); err != nil {
		t.Errorf("clients add after init: %v %s", err, errOut)
	}
}

// TestServeWithoutConfigurationSaysSo: with no configuration file, serve runs
// on the built-in defaults and logs that it does, naming the directory.
func TestServeWithoutConfigurationSaysSo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The built-in listen address (127.0.0.1:8080) may be taken: an occupied
	// port makes serve stop right after its first log lines, which are the
	// ones this test reads. A free one is used otherwise.
	_, errOut, err := runIn(t, dir, []string{"KEYGATE_LISTEN=127.0.0.1:1"}, "serve")
	if err == nil {
		t.Fatal("serve on port 1 as an unprivileged user started")
	}
	if !strings.Contains(errOut, "no configuration file (no --config, no KEYGATE_CONFIG, no config.yaml in the working directory): using the built-in defaults") ||
		!strings.Contains(errOut, dir) || !strings.Contains(errOut, "KEYGATE_LISTEN") {
		t.Errorf("no clear log of the configuration in use:\n%s", errOut)
	}
}

// TestVersion: --version and `version` print the version and the Go version
// (`version` also the schema migration levels), and /metrics carries them as
// keygate_build_info.
func TestVersion(t *testing.T) {
	t.Parallel()
	in := newInstance(t, "")
	out, _, err := in.run(t, nil, "--version")
	if err != nil || !strings.HasPrefix(out, "keygate ") || !strings.Contains(out, "(go1.") {
		t.Fatalf("--version: %v %q", err, out)
	}
	out2, _, err := in.run(t, nil, "version")
	if err != nil || !strings.HasPrefix(out2, out) || !regexp.MustCompile(`\nschema: migration [1-9][0-9]* \(SQLite\), [1-9][0-9]* \(PostgreSQL\)\n$`).MatchString(out2) {
		t.Errorf("version: %v %q, want %q and the schema levels", err, out2, out)
	}
	ver := strings.Fields(out)[1]
	s := in.serve(t)
	res, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(body, []byte(`keygate_build_info{go_version="go1.`)) || !bytes.Contains(body, []byte(`version="`+ver+`"} 1`)) {
		t.Errorf("no keygate_build_info with version %s in /metrics:\n%s", ver, grepLines(string(body), "keygate_build_info"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPortInUseWritesNothing: serve binds listen (and server.metrics_listen)
// before it opens or creates the database, so a port conflict fails at once
// and leaves the directory empty.
func TestPortInUseWritesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, c := range []struct{ env, want string }{
		{env: "KEYGATE_LISTEN=" + addr, want: "listen: listen tcp " + addr},
		{env: "KEYGATE_METRICS_LISTEN=" + addr, want: "server.metrics_listen: listen tcp " + addr},
	} {
		dir := t.TempDir()
		start := time.Now()
		_, errOut, err := runIn(t, dir, []string{"KEYGATE_LISTEN=127.0.0.1:0", c.env}, "serve")
		if err == nil || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "address already in use") {
			t.Errorf("%s: err %v, stderr:\n%s", c.env, err, errOut)
		}
		if got := entries(t, dir); len(got) != 0 {
			t.Errorf("%s: a failed start created %v", c.env, got)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s: took %s to fail", c.env, d)
		}
	}
}

// TestUnsupportedDatabaseURLRefused: a mysql:// URL is refused at load,
// naming the setting, creating no folder and printing no password.
func TestUnsupportedDatabaseURLRefused(t *testing.T) {
	t.Parallel()
	const password = "Sup3rSecretPw"
	for _, c := range []struct {
		file, env, want string
	}{
		{file: "storage:\n  dsn: mysql://u:" + password + "@host/kg\n", want: "storage.dsn: unsupported scheme mysql://"},
		{env: "KEYGATE_DATABASE_URL=mysql://u:" + password + "@host/kg", want: "KEYGATE_DATABASE_URL: unsupported scheme mysql://"},
	} {
		dir := t.TempDir()
		if c.file != "" {
			if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var env []string
		if c.env != "" {
			env = []string{c.env}
		}
		for _, args := range [][]string{{"serve"}, {"init"}, {"keys", "list"}} {
			out, errOut, err := runIn(t, dir, append(env, "KEYGATE_LISTEN=127.0.0.1:0"), args...)
			if err == nil || !strings.Contains(errOut, c.want) {
				t.Errorf("%v %q: err %v, stderr %s", args, c.file+c.env, err, errOut)
			}
			if strings.Contains(out+errOut, password) {
				t.Errorf("%v: the password is in the output:\n%s%s", args, out, errOut)
			}
			if got := entries(t, dir); len(got) > 1 || (len(got) == 1 && got[0] != "config.yaml") {
				t.Errorf("%v: created %v", args, got)
			}
		}
	}
}

// TestPostgresPasswordNeverLogged: a PostgreSQL connection that fails (no
// such role) says why without the password; one that connects logs the DSN
// with the password replaced.
func TestPostgresPasswordNeverLogged(t *testing.T) {
	base := fleetDSN(t) // skips without KEYGATE_TEST_POSTGRES_DSN
	const password = "Wr0ngPassw0rd"
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("keygate_no_such_role", password)
	dir := t.TempDir()
	for _, args := range [][]string{{"serve"}, {"init"}, {"keys", "list"}} {
		out, errOut, err := runIn(t, dir, []string{"KEYGATE_DATABASE_URL=" + u.String(), "KEYGATE_LISTEN=127.0.0.1:0",
			"KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("ab", 32)}, args...)
		if err == nil || !strings.Contains(errOut, "keygate_no_such_role") {
			t.Errorf("%v: err %v, stderr:\n%s", args, err, errOut)
		}
		if strings.Contains(out+errOut, password) {
			t.Errorf("%v: the password is in the output:\n%s%s", args, out, errOut)
		}
	}

	// An empty schema is no database: the CLI refuses, init creates it. The
	// DSN carries a password (which the test server may not check): the log
	// shows it redacted, and never in clear.
	u, _ = url.Parse(base)
	u.User = url.UserPassword(u.User.Username(), password)
	env := []string{"KEYGATE_DATABASE_URL=" + u.String(), "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("ab", 32)}
	var all strings.Builder
	out, errOut, err := runIn(t, dir, env, "keys", "list")
	all.WriteString(out + errOut)
	if err == nil || !strings.Contains(errOut, "no Keygate database at postgres://"+u.User.Username()+":xxxxx@") {
		t.Errorf("keys list on an empty schema: %v\n%s", err, errOut)
	}
	out, errOut, err = runIn(t, dir, env, "init")
	all.WriteString(out + errOut)
	if err != nil || !strings.Contains(out, "created a Keygate database at postgres://"+u.User.Username()+":xxxxx@") ||
		!strings.Contains(errOut, `postgres://`+u.User.Username()+`:xxxxx@`) {
		t.Fatalf("init on an empty schema: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runIn(t, dir, env, "keys", "list")
	all.WriteString(out + errOut)
	if err != nil || !strings.Contains(out, "active") {
		t.Errorf("keys list after init: %v\n%s%s", err, out, errOut)
	}
	if strings.Contains(all.String(), password) {
		t.Errorf("the password is in the output:\n%s", all.String())
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("PostgreSQL commands created %v in the working directory", got)
	}
}
