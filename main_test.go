package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/poll"
	"github.com/keygate/keygate/web"
)

// binary is the real keygate command, built once with the fault hooks compiled
// in (they do nothing unless KEYGATE_FAULT names a point).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keygate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "keygate")
	out, err := exec.Command("go", "build", "-tags", "keygate_faults", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build keygate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one configuration directory: a config file, a database, a KEK.
type instance struct {
	dir, config string
	env         []string
}

func newInstance(t *testing.T, extra string) *instance {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	body := "issuer: http://localhost:1\nlisten: 127.0.0.1:0\nlog:\n  format: json\n" + extra
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return &instance{dir: dir, config: cfg, env: []string{"KEYGATE_POLL_INTERVAL=100ms"}}
}

// command is keygate args with the instance's configuration and environment,
// plus env.
func (in *instance) command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, append([]string{"--config", in.config}, args...)...)
	cmd.Env = append(append(os.Environ(), in.env...), env...)
	return cmd
}

// run executes a keygate command to completion.
func (in *instance) run(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := in.command(env, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// newInitialized is newInstance with its database and first keys created
// (init).
func newInitialized(t *testing.T, extra string) *instance {
	t.Helper()
	in := newInstance(t, extra)
	in.init(t)
	return in
}

// init creates the instance's database and first keys (`keygate init`): the
// other commands refuse to run without one.
func (in *instance) init(t *testing.T) {
	t.Helper()
	if out, errOut, err := in.run(t, nil, "init"); err != nil || !strings.Contains(out, "created a Keygate database") {
		t.Fatalf("init: %v\n%s%s", err, out, errOut)
	}
}

func (in *instance) keys(t *testing.T) []web.KeyView {
	t.Helper()
	out, errOut, err := in.run(t, nil, "keys", "list", "--json")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, errOut)
	}
	var v []web.KeyView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("keys list output: %v\n%s", err, out)
	}
	return v
}

// server is a running keygate process.
type server struct {
	cmd    *exec.Cmd
	url    string
	kid    string
	stderr *kgtest.LogBuffer // the process's log, readable while it runs
	done   chan error
}

// serve starts the server and waits for its "keygate started" log line.
func (in *instance) serve(t *testing.T, extraEnv ...string) *server {
	t.Helper()
	cmd := in.command(extraEnv)
	pr, pw := io.Pipe()
	s := &server{cmd: cmd, stderr: &kgtest.LogBuffer{}, done: make(chan error, 1)}
	// The buffer first: once the scanner below sees "keygate started", every
	// line before it must already be in s.stderr (the other order let a test
	// read the buffer while the chunk holding the start-up lines was still on
	// its way there).
	cmd.Stderr = io.MultiWriter(s.stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.done })
	started := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "keygate started" {
				started <- line
			}
		}
		close(started)
	}()
	select {
	case line, ok := <-started:
		if !ok {
			t.Fatalf("keygate exited before starting:\n%s", s.stderr)
		}
		s.url = "http://" + line["listen"].(string)
		s.kid = line["active_kid"].(string)
	case <-time.After(60 * time.Second):
		t.Fatalf("keygate did not start:\n%s", s.stderr)
	}
	go io.Copy(io.Discard, pr)
	return s
}

func (s *server) jwks(t *testing.T) (body []byte, etag string) {
	t.Helper()
	resp, err := http.Get(s.url + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /jwks: %d %s", resp.StatusCode, b)
	}
	return b, resp.Header.Get("ETag")
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("keygate did not exit cleanly on SIGTERM: %v\n%s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("keygate did not stop on SIGTERM")
	}
	if !strings.Contains(s.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no graceful-shutdown log line:\n%s", s.stderr)
	}
}

// TestRestartKeepsKeysAndDoesNotRotate: the database, key file and key states
// survive a restart; the second start serves the same bytes and signs with the
// same key.
func TestRestartKeepsKeysAndDoesNotRotate(t *testing.T) {
	in := newInstance(t, "")
	s1 := in.serve(t)
	body1, etag1 := s1.jwks(t)
	s1.stop(t)
	for _, f := range []string{"data/keygate.db", "data/keygate.kek"} {
		fi, err := os.Stat(filepath.Join(in.dir, f))
		if err != nil {
			t.Fatalf("%s not created: %v", f, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if !strings.Contains(s1.stderr.String(), "development key-encryption key") {
		t.Error("no warning about the development key-encryption key")
	}
	s2 := in.serve(t)
	body2, etag2 := s2.jwks(t)
	if s2.kid != s1.kid || etag1 != etag2 || !bytes.Equal(body1, body2) {
		t.Errorf("restart changed the key set: kid %s→%s etag %s→%s", s1.kid, s2.kid, etag1, etag2)
	}
	if strings.Contains(s2.stderr.String(), "signing key changed") {
		t.Errorf("restart rotated:\n%s", s2.stderr)
	}
}

// TestCLIWhileServerRuns: rotate and revoke from the CLI against the database a
// server is using; the server notices within its poll interval.
func TestCLIWhileServerRuns(t *testing.T) {
	in := newInstance(t, "")
	s := in.serve(t)
	_, etag := s.jwks(t)

	out, errOut, err := in.run(t, nil, "keys", "rotate", "--force")
	if err != nil || !strings.Contains(out, "rotated:") {
		t.Fatalf("keys rotate: %v\n%s%s", err, out, errOut)
	}
	waitFor(t, func() bool { _, e := s.jwks(t); return e != etag }, "the server to publish the rotated set")
	keys := in.keys(t)
	if keys[0].State != "active" || keys[0].KID == s.kid {
		t.Fatalf("after rotation: %+v", keys)
	}

	// A kid may begin with '-' (base64url): -- keeps it from being read as a flag.
	if _, errOut, err := in.run(t, nil, "keys", "revoke", "--", s.kid); err != nil {
		t.Fatalf("keys revoke: %v\n%s", err, errOut)
	}
	waitFor(t, func() bool { b, _ := s.jwks(t); return !bytes.Contains(b, []byte(s.kid)) }, "the revoked kid to leave the JWKS")

	if _, errOut, err := in.run(t, nil, "keys", "revoke", "no-such-kid"); err == nil || !strings.Contains(errOut, "unknown kid") {
		t.Errorf("revoking an unknown kid: %v %s", err, errOut)
	}
	if _, errOut, err := in.run(t, nil, "keys", "revoke", "--", "-no-such-kid"); err == nil || !strings.Contains(errOut, "unknown kid") {
		t.Errorf("revoking an unknown kid that begins with '-': %v %s", err, errOut)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

// TestCrashDuringRotation kills the real binary with SIGKILL at points inside a
// rotation and checks that what is on disk is a valid key set that lost nothing
// it had published, and that the next start serves it.
func TestCrashDuringRotation(t *testing.T) {
	for _, point := range []string{"store.before-commit", "rotation.after-promote", "rotation.after-generate"} {
		t.Run(point, func(t *testing.T) {
			in := newInitialized(t, "")
			if _, errOut, err := in.run(t, nil, "keys", "rotate", "--force"); err != nil {
				t.Fatalf("first rotate: %v\n%s", err, errOut)
			}
			before := in.keys(t)

			_, _, err := in.run(t, []string{"KEYGATE_FAULT=" + point}, "keys", "rotate", "--force")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the rotation was not killed at %s: %v", point, err)
			}

			after := in.keys(t)
			checkValid(t, after, false)
			for _, k := range before {
				if k.Published && !contains(after, k.KID) {
					t.Errorf("key %s (%s) was published before the crash and is gone after it", k.KID, k.State)
				}
			}
			s := in.serve(t)
			body, _ := s.jwks(t)
			checkValid(t, in.keys(t), true)
			for _, k := range before {
				if k.Published && !bytes.Contains(body, []byte(k.KID)) {
					t.Errorf("key %s is missing from the JWKS after restart", k.KID)
				}
			}
		})
	}
}

func contains(keys []web.KeyView, kid string) bool {
	for _, k := range keys {
		if k.KID == kid {
			return true
		}
	}
	return false
}

// checkValid: exactly one active key, at most one next (exactly one once a
// server has reconciled).
func checkValid(t *testing.T, keys []web.KeyView, complete bool) {
	t.Helper()
	n := map[string]int{}
	for _, k := range keys {
		n[k.State]++
	}
	if n["active"] != 1 || n["next"] > 1 || (complete && n["next"] != 1) {
		t.Errorf("invalid key set: %v", n)
	}
}

func TestBadConfigurationStops(t *testing.T) {
	cases := []struct {
		extra, env, want string
	}{
		{extra: "jwks:\n  max_age: 13h\n", want: "keys.publish_ahead: must be at least twice jwks.max_age"},
		{env: "KEYGATE_RSA_BITS=1000", want: "keys.rsa_bits"},
		{env: "KEYGATE_LISTEN=nowhere", want: "listen"},
		{env: "KEYGATE_KEY_ENCRYPTION_KEY=too-short", want: "KEYGATE_KEY_ENCRYPTION_KEY"},
	}
	for _, c := range cases {
		in := newInstance(t, c.extra)
		var env []string
		if c.env != "" {
			env = []string{c.env}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, binary, "--config", in.config)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%q %q: err=%v, output %s, want it to mention %q", c.extra, c.env, err, out, c.want)
		}
	}
}

// TestWrongKEKRefusesToStart: a server started with another key-encryption key
// exits with a clear message and leaves the stored keys exactly as they were.
func TestWrongKEKRefusesToStart(t *testing.T) {
	in := newInstance(t, "keys:\n  rotation_period: 1h\n  publish_ahead: 30m\n  poll_interval: 1s\njwks:\n  max_age: 1m\n")
	good := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("ab", 32)
	bad := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("cd", 32)
	in.env = append(in.env, good)
	in.init(t)
	before := in.keys(t)
	for _, args := range [][]string{{"serve"}, {"keys", "rotate", "--force"}} {
		_, errOut, err := in.run(t, []string{bad}, args...)
		if err == nil || !strings.Contains(errOut, "key-encryption key does not open the stored signing keys") ||
			!strings.Contains(errOut, "not changed") {
			t.Errorf("%v with the wrong KEK: %v\n%s", args, err, errOut)
		}
	}
	after := in.keys(t)
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if !bytes.Equal(b1, b2) {
		t.Errorf("stored keys changed:\n%s\n%s", b1, b2)
	}
	if _, errOut, err := in.run(t, nil, "keys", "rotate", "--force"); err != nil {
		t.Errorf("the right KEK no longer works: %v\n%s", err, errOut)
	}
}
