// Package deploy holds what runs Keygate as a service: the systemd unit
// (keygate.service) and its production configuration (config.yaml); the
// container image is the repository's Dockerfile. These tests check that
// the three agree with each other and with the config package, verify the
// unit with systemd-analyze when it is installed, and build the binary
// exactly as the Dockerfile does and run it as the image's non-root user
// with only its data directory writable.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/config"
)

const (
	unitFile   = "keygate.service"
	configFile = "config.yaml"
	dockerfile = "../Dockerfile"

	// buildCmd is the Dockerfile's build step; the test builds with the same
	// environment and flags (goBuildArgs).
	buildCmd = "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /keygate ."

	// nonroot is the image's user and group (distroless "nonroot").
	nonroot = 65532
)

var goBuildArgs = []string{"build", "-trimpath", "-ldflags=-s -w"}

// unit is a parsed unit file: section → key → values in order (a key may repeat).
type unit map[string]map[string][]string

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u, section := unit{}, ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot parse %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// loadConfig loads path as keygate would, with env as the whole environment.
func loadConfig(t *testing.T, path string, env map[string]string) config.Config {
	t.Helper()
	c, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnit checks the unit's settings against the brief of a sandboxed
// service and against the configuration it is shipped with.
func TestUnit(t *testing.T) {
	u := parseUnit(t, unitFile)
	want := map[string]string{
		"DynamicUser": "yes", "StateDirectory": "keygate", "WorkingDirectory": "/var/lib/keygate",
		"ExecStart":     "/usr/local/bin/keygate --config /etc/keygate/config.yaml",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"NoNewPrivileges": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"CapabilityBoundingSet": "", "AmbientCapabilities": "", "MemoryDenyWriteExecute": "yes",
		"LockPersonality": "yes", "RestrictNamespaces": "yes", "Restart": "on-failure",
		"LoadCredential": "kek:/etc/keygate/kek", "KillSignal": "SIGTERM",
	}
	for k, v := range want {
		if _, ok := u["Service"][k]; !ok {
			t.Errorf("[Service] %s: missing, want %q", k, v)
		} else if got := u.get("Service", k); got != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if got := u["Service"]["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", got)
	}
	env := map[string]string{}
	for _, e := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	// %d is the credentials directory; LoadCredential names the file "kek" in it.
	if got := env["KEYGATE_KEY_ENCRYPTION_KEY_FILE"]; got != "%d/kek" {
		t.Errorf("Environment KEYGATE_KEY_ENCRYPTION_KEY_FILE=%q, want %%d/kek", got)
	}

	// The shipped configuration, as the service loads it.
	c := loadConfig(t, configFile, env)
	state := "/var/lib/" + u.get("Service", "StateDirectory")
	if !strings.HasPrefix(c.Storage.DSN, state+"/") {
		t.Errorf("%s: storage.dsn %q is outside the state directory %s, the only path the service may write", configFile, c.Storage.DSN, state)
	}
	if _, p, _ := net.SplitHostPort(c.Listen); !unprivilegedPort(p) {
		t.Errorf("%s: listen %q needs CAP_NET_BIND_SERVICE, which the unit does not grant", configFile, c.Listen)
	}
	stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if stop <= c.Server.ShutdownTimeout {
		t.Errorf("TimeoutStopSec=%s must exceed server.shutdown_timeout %s, or systemd kills a graceful shutdown", stop, c.Server.ShutdownTimeout)
	}
}

// unprivilegedPort reports whether binding port needs no capability.
func unprivilegedPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1024
}

// TestUnitVerifies runs systemd-analyze verify (and, where supported, the
// offline security review) on the unit, its ExecStart pointed at an existing
// executable since verify checks that it exists.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, unitFile)
	body := strings.Replace(string(b), "ExecStart=/usr/local/bin/keygate ", "ExecStart="+self+" ", 1)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	help, _ := exec.Command(analyze, "security", "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("--offline")) {
		t.Log("systemd-analyze security --offline is not supported here (systemd < 250); exposure not reviewed")
		return
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (it was 1.2; OK ends at 3.9): %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd-analyze security: exposure %s", m[1])
	}
}

// dockerfileLines returns the Dockerfile's instructions, continuations joined.
func dockerfileLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		if cur+l != "" {
			lines = append(lines, strings.Join(strings.Fields(cur+l), " "))
		}
		cur = ""
	}
	return lines
}

// TestDockerfile checks the image's build flags, Go version, user, data
// volume and environment: the environment names are the config package's,
// and they put the database in the volume and the listener on EXPOSE.
func TestDockerfile(t *testing.T) {
	lines := dockerfileLines(t)
	joined := strings.Join(lines, "\n")
	if !strings.Contains(joined, "RUN "+buildCmd) {
		t.Errorf("Dockerfile does not build with %q, which this test reproduces", buildCmd)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVer == nil || !strings.Contains(joined, "FROM golang:"+string(goVer[1])+" AS build") {
		t.Errorf("the build stage is not golang:%s (go.mod)", goVer[1])
	}
	var last string // the final stage's instructions
	env := map[string]string{}
	for _, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			last = ""
		}
		last += l + "\n"
		if rest, ok := strings.CutPrefix(l, "ENV "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	for _, want := range []string{"USER 65532:65532", "WORKDIR /data", "VOLUME /data", "EXPOSE 8080",
		`ENTRYPOINT ["/keygate"]`, "COPY --from=build /keygate /keygate"} {
		if !strings.Contains(last, want+"\n") {
			t.Errorf("the final stage lacks %q:\n%s", want, last)
		}
	}
	if !regexp.MustCompile(`(?m)^FROM (gcr\.io/distroless/static-debian\d+:nonroot|scratch)$`).MatchString(last) {
		t.Errorf("the final stage is not distroless static nonroot or scratch:\n%s", last)
	}
	c := loadConfig(t, "", env) // no configuration file: WORKDIR /data holds none
	if c.Listen != ":8080" {
		t.Errorf("listen in the image is %q, want :8080 (EXPOSE)", c.Listen)
	}
	if c.Storage.Driver != "sqlite" || filepath.Dir(c.Storage.DSN) != "/data" {
		t.Errorf("the image's database is %s %q, want a SQLite file in the /data volume", c.Storage.Driver, c.Storage.DSN)
	}
}

// TestStaticBinaryRunsUnprivileged builds keygate as the Dockerfile does,
// checks that it is statically linked (it runs on distroless static or
// scratch), and runs it as uid/gid 65532 with the shipped configuration in a
// root-owned directory, the KEK as a credential file, and only the data
// directory writable: it must become ready, serve its key set, stop cleanly
// on SIGTERM and have written nothing outside the data directory.
func TestStaticBinaryRunsUnprivileged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	base, dirs := serviceDirs(t)
	bin := filepath.Join(dirs["bin"], "keygate")
	buildStatic(t, bin)
	assertStatic(t, bin)

	if os.Geteuid() != 0 {
		t.Skip("not root: cannot run the binary as uid 65532 (the static build was checked)")
	}
	etcConfig, kek := installServiceFiles(t, dirs)

	before := snapshot(t, base, dirs["data"])
	scratchBefore := scratchOwnedBy(nonroot)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := startUnprivileged(t, ctx, bin, etcConfig, kek, dirs["data"])
	svc.checkServes(t)
	svc.stop(t)

	assertDataOwned(t, dirs["data"])
	// Nothing else: the binary, configuration and credential are untouched,
	// and nothing of the service's user appeared in the world-writable scratch
	// directories (the only other places it could write).
	assertUnchanged(t, before, snapshot(t, base, dirs["data"]))
	for p := range scratchOwnedBy(nonroot) {
		if !scratchBefore[p] {
			t.Errorf("written outside the data directory: %s", p)
		}
	}
}

// serviceDirs makes a traversable root-owned base directory holding bin,
// etc, credentials and data, as a host lays the service out.
func serviceDirs(t *testing.T) (base string, dirs map[string]string) {
	t.Helper()
	base, err := os.MkdirTemp("", "keygate-deploy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // traversable by the service user
		t.Fatal(err)
	}
	dirs = map[string]string{}
	for _, d := range []string{"bin", "etc", "credentials", "data"} {
		dirs[d] = filepath.Join(base, d)
		if err := os.Mkdir(dirs[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return base, dirs
}

// buildStatic builds keygate to bin with the Dockerfile's environment and
// flags.
func buildStatic(t *testing.T, bin string) {
	t.Helper()
	build := exec.Command("go", append(goBuildArgs, "-o", bin, "github.com/keygate/keygate")...)
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

// installServiceFiles puts the shipped configuration in etc and a KEK in
// credentials, and hands the data directory (0700) and the KEK to the
// service user, returning the configuration's and the KEK's paths.
func installServiceFiles(t *testing.T, dirs map[string]string) (etcConfig, kek string) {
	t.Helper()
	cfg, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	etcConfig = filepath.Join(dirs["etc"], "config.yaml")
	kek = filepath.Join(dirs["credentials"], "kek")
	if err := os.WriteFile(etcConfig, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// As LoadCredential hands it over: a 0400 file of the service's user.
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(kek, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(kek, nonroot, nonroot); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dirs["data"], nonroot, nonroot); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dirs["data"], 0o700); err != nil {
		t.Fatal(err)
	}
	return etcConfig, kek
}

// service is a keygate process running as the service user.
type service struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan error // its exit
	url  string     // where it listens, once started
}

// startUnprivileged runs bin as uid/gid 65532 in data with the service's
// environment and waits for its "keygate started" log line.
func startUnprivileged(t *testing.T, ctx context.Context, bin, etcConfig, kek, data string) *service {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "--config", etcConfig)
	cmd.Dir = data // WorkingDirectory=/var/lib/keygate, WORKDIR /data
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent",
		"KEYGATE_LISTEN=127.0.0.1:0",
		"KEYGATE_DATABASE_URL=" + filepath.Join(data, "keygate.db"),
		"KEYGATE_KEY_ENCRYPTION_KEY_FILE=" + kek}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot, Groups: []uint32{}}}
	s := &service{cmd: cmd, log: new(bytes.Buffer), done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(pw, s.log)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	listen := make(chan string, 1)
	go scanListen(pr, listen)
	select {
	case addr, ok := <-listen:
		if !ok {
			t.Fatalf("keygate exited before starting: %v\n%s", <-s.done, s.log)
		}
		s.url = "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatalf("keygate did not start:\n%s", s.log)
	}
	return s
}

// scanListen sends the listen address of the "keygate started" line of the
// JSON log r to listen, and closes listen when r ends.
func scanListen(r io.Reader, listen chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "keygate started" {
			listen <- fmt.Sprint(line["listen"])
		}
	}
	close(listen)
}

// checkServes checks that the service is ready and serves a key set.
func (s *service) checkServes(t *testing.T) {
	t.Helper()
	for _, path := range []string{"/readyz", "/jwks"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/jwks" && !bytes.Contains(body, []byte(`"kid"`)) {
			t.Errorf("GET /jwks: no key: %s", body)
		}
	}
}

// stop sends SIGTERM and checks for a clean, logged shutdown that used the
// credential KEK.
func (s *service) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("keygate did not exit cleanly on SIGTERM: %v\n%s", err, s.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("keygate did not stop on SIGTERM:\n%s", s.log)
	}
	if !strings.Contains(s.log.String(), `"msg":"stopped"`) {
		t.Errorf("no graceful-shutdown log line:\n%s", s.log)
	}
	if strings.Contains(s.log.String(), "development key-encryption key") {
		t.Errorf("the credential KEK was not used:\n%s", s.log)
	}
}

// assertDataOwned checks what was written: the database, in the data
// directory, owned by the service user.
func assertDataOwned(t *testing.T, data string) {
	t.Helper()
	entries, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, _ := e.Info()
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != nonroot {
			t.Errorf("data/%s is not owned by %d", e.Name(), nonroot)
		}
	}
	if !strings.Contains(strings.Join(names, " "), "keygate.db") {
		t.Errorf("no database in the data directory: %v", names)
	}
}

// assertUnchanged fails for every path of snapshot before that is changed or
// gone in after, and every path of after that is new.
func assertUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, s := range after {
		if before[p] != s {
			t.Errorf("written outside the data directory: %s (%s, was %q)", p, s, before[p])
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("removed outside the data directory: %s", p)
		}
	}
}

// assertStatic fails unless path is an ELF executable with no interpreter and
// no dynamic section.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (%s segment): it would not run on a static base image", path, p.Type)
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Errorf("%s has a .dynamic or .interp section", path)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table: -ldflags='-s -w' was not applied", path)
	}
}

// snapshot maps every path under root, except under skip, to its metadata.
func snapshot(t *testing.T, root, skip string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		m[p] = fmt.Sprintf("%v %d uid=%d mtime=%d", fi.Mode(), fi.Size(), st.Uid, fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scratchOwnedBy lists the entries of the world-writable scratch directories
// owned by uid.
func scratchOwnedBy(uid uint32) map[string]bool {
	m := map[string]bool{}
	for _, dir := range []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == uid {
					m[filepath.Join(dir, e.Name())] = true
				}
			}
		}
	}
	return m
}
