package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestREADME runs README.md's shell blocks in order against a fresh copy of the
// repository, as a reader would, so that the README cannot drift from the code.
// The convention is stated in the HTML comment at the top of README.md:
//
//   - every indented code block and every ```sh (```bash, ```shell) block is run,
//     unless the last non-blank line before it is a `<!-- readme-test: skip (why) -->`
//     comment; other fenced blocks (```yaml, ```go, ...) are not;
//   - each line, joined with its `\` continuations, is one `bash -e -o pipefail`
//     command in the copy's directory; lines starting with `#` show output and are
//     not run; exported variables carry over to later commands (and to the server);
//   - `go run .` alone on a line starts the server in the background (stopping the
//     one already running), listening on 127.0.0.1:0; its address replaces
//     `localhost:8080` in later commands; `go run . ARGS` and `keygate ARGS` run the
//     binary TestMain built; any other `go` command is the real one;
//   - curl runs with --fail-with-body: an HTTP error status fails the command;
//   - `kgs_…` is replaced by the client_secret most recently printed, `KID` by the
//     kid of the key in state next when the command runs.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("no shell blocks found in README.md")
	}
	clone := t.TempDir()
	copyTracked(t, clone)
	checkLinks(t, string(readme), clone)

	shims := t.TempDir()
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	realCurl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed to run README.md's commands")
	}
	writeShim(t, shims, "go", fmt.Sprintf(`if [ "$1" = run ] && [ "$2" = . ]; then shift 2; exec %q "$@"; fi
if [ "$1" = test ]; then echo "readme_test.go: go test in README.md would run this test again: mark the block readme-test: skip" >&2; exit 1; fi
exec %q "$@"`, binary, realGo))
	writeShim(t, shims, "keygate", fmt.Sprintf(`exec %q "$@"`, binary))
	writeShim(t, shims, "curl", fmt.Sprintf(`exec %q --fail-with-body "$@"`, realCurl))

	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "KEYGATE_"): // a fresh shell, as a reader's
		case strings.HasPrefix(kv, "PATH="):
			env = append(env, "PATH="+shims+string(os.PathListSeparator)+kv[len("PATH="):])
		default:
			env = append(env, kv)
		}
	}
	r := &readmeRun{t: t, dir: clone, env: env, tmp: shims, state: filepath.Join(shims, "state.sh")}
	if err := os.WriteFile(r.state, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start, n := time.Now(), 0
	for _, b := range blocks {
		if b.skip != "" {
			t.Logf("README.md:%d: skipped: %s", b.line, b.skip)
			continue
		}
		for _, c := range b.commands {
			r.command(b, c)
			n++
		}
	}
	t.Logf("ran README.md's %d commands in %v", n, time.Since(start).Round(time.Millisecond))
}

// readmeBlock is one shell block of README.md.
type readmeBlock struct {
	line     int    // of its first line
	skip     string // the reason in a readme-test: skip comment before it
	text     []string
	commands []readmeCommand
}

type readmeCommand struct {
	line int
	text string
}

var skipMarker = regexp.MustCompile(`^<!--\s*readme-test:\s*skip\b(.*?)-->\s*$`)

// readmeBlocks returns README's indented code blocks and ```sh fences, with
// their commands, in order.
func readmeBlocks(readme string) []readmeBlock {
	s := readmeScanner{lines: strings.Split(readme, "\n")}
	for ; s.i < len(s.lines); s.i++ {
		s.line()
	}
	for k := range s.blocks {
		s.blocks[k].splitCommands()
	}
	return s.blocks
}

var readmeListItem = regexp.MustCompile(`^ {0,3}([-*+]|\d+[.)])\s`)

func readmeBlank(s string) bool { return strings.TrimSpace(s) == "" }

func readmeIndented(s string) bool { return strings.HasPrefix(s, "    ") || strings.HasPrefix(s, "\t") }

// readmeScanner walks README's lines, collecting its shell blocks.
type readmeScanner struct {
	lines     []string
	i         int // the current line
	blocks    []readmeBlock
	lastText  string // last non-blank line outside a block
	inList    bool
	inComment bool
}

// line takes in line i and, when it opens a block, the rest of the block
// (leaving i on its last line).
func (s *readmeScanner) line() {
	l := s.lines[s.i]
	switch {
	case s.comment(l), s.fence(l), s.indentedBlock(l):
	default:
		s.prose(l)
	}
}

// comment skips a multi-line HTML comment, reporting whether l is part of one.
func (s *readmeScanner) comment(l string) bool {
	switch {
	case s.inComment:
		s.inComment = !strings.Contains(l, "-->")
	case strings.HasPrefix(l, "<!--") && !strings.Contains(l, "-->"):
		s.inComment = true
	default:
		return false
	}
	s.lastText = l
	return true
}

// fence takes in a fenced block opened by l, keeping it if it is a shell one.
func (s *readmeScanner) fence(l string) bool {
	fence := strings.TrimSpace(l)
	if !strings.HasPrefix(fence, "```") || strings.HasPrefix(l, "    ") {
		return false
	}
	lang := strings.TrimSpace(strings.TrimPrefix(fence, "```"))
	b := readmeBlock{line: s.i + 2}
	for s.i++; s.i < len(s.lines) && strings.TrimSpace(s.lines[s.i]) != "```"; s.i++ {
		b.text = append(b.text, s.lines[s.i])
	}
	if lang == "sh" || lang == "bash" || lang == "shell" {
		b.skip = skipReason(s.lastText)
		s.blocks = append(s.blocks, b)
	}
	s.lastText = "```"
	return true
}

func (s *readmeScanner) prevBlank() bool { return s.i == 0 || readmeBlank(s.lines[s.i-1]) }

// indentedBlock takes in an indented code block opened by l (not a list
// item's continuation).
func (s *readmeScanner) indentedBlock(l string) bool {
	if !readmeIndented(l) || !s.prevBlank() || s.inList || readmeBlank(l) {
		return false
	}
	b := readmeBlock{line: s.i + 1, skip: skipReason(s.lastText)}
	for ; s.i < len(s.lines); s.i++ {
		if readmeBlank(s.lines[s.i]) {
			if !s.indentedFollows() {
				break
			}
			b.text = append(b.text, "")
			continue
		}
		if !readmeIndented(s.lines[s.i]) {
			break
		}
		b.text = append(b.text, strings.TrimPrefix(strings.TrimPrefix(s.lines[s.i], "\t"), "    "))
	}
	s.i--
	s.blocks = append(s.blocks, b)
	s.lastText = "    "
	return true
}

// indentedFollows reports whether the blank line i belongs to an indented
// block: indented lines follow it.
func (s *readmeScanner) indentedFollows() bool {
	j := s.i
	for j < len(s.lines) && readmeBlank(s.lines[j]) {
		j++
	}
	return j < len(s.lines) && strings.HasPrefix(s.lines[j], "    ")
}

// prose takes in a line outside any block, tracking lists.
func (s *readmeScanner) prose(l string) {
	if readmeBlank(l) {
		return
	}
	switch {
	case readmeListItem.MatchString(l):
		s.inList = true
	case !strings.HasPrefix(l, " ") && s.prevBlank():
		s.inList = false
	}
	s.lastText = l
}

// splitCommands cuts b's text into commands: a line with its `\`
// continuations, leaving out blank lines and comments.
func (b *readmeBlock) splitCommands() {
	for j := 0; j < len(b.text); j++ {
		first := j
		cmd := b.text[j]
		for strings.HasSuffix(cmd, `\`) && j+1 < len(b.text) {
			j++
			cmd += "\n" + b.text[j]
		}
		if t := strings.TrimSpace(cmd); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.commands = append(b.commands, readmeCommand{line: b.line + first, text: cmd})
	}
}

func skipReason(marker string) string {
	m := skipMarker.FindStringSubmatch(strings.TrimSpace(marker))
	if m == nil {
		return ""
	}
	if r := strings.Trim(strings.TrimSpace(m[1]), "()"); r != "" {
		return r
	}
	return "no reason given"
}

// readmeRun is the state carried from one README command to the next.
type readmeRun struct {
	t      *testing.T
	dir    string
	env    []string
	tmp    string
	state  string // a bash script of the exported variables
	server *server
	addr   string // the server's host:port
	secret string // the last client_secret printed
}

var (
	serverLine   = regexp.MustCompile(`^go run \.\s*(#.*)?$`)
	secretLine   = regexp.MustCompile(`(?m)^client_secret:\s+(kgs_\S+)`)
	kidWord      = regexp.MustCompile(`\bKID\b`)
	readmeOutMax = 4000
)

func (r *readmeRun) command(b readmeBlock, c readmeCommand) {
	t := r.t
	t.Helper()
	where := fmt.Sprintf("README.md:%d (block at line %d)", c.line, b.line)
	if serverLine.MatchString(strings.TrimSpace(c.text)) {
		r.startServer(where)
		return
	}
	cmd := c.text
	if r.addr != "" {
		cmd = strings.ReplaceAll(cmd, "localhost:8080", r.addr)
	}
	if strings.Contains(cmd, "kgs_…") {
		if r.secret == "" {
			t.Fatalf("%s: `kgs_…` but no client_secret was printed before:\n%s", where, c.text)
		}
		cmd = strings.ReplaceAll(cmd, "kgs_…", r.secret)
	}
	if kidWord.MatchString(cmd) {
		cmd = kidWord.ReplaceAllString(cmd, r.nextKID(where))
	}
	out, err := r.bash(cmd)
	if err != nil {
		t.Fatalf("%s: %v\n$ %s\n%s", where, err, c.text, tail(out))
	}
	if m := secretLine.FindAllStringSubmatch(out, -1); m != nil {
		r.secret = m[len(m)-1][1]
	}
}

// bash runs one command with the exported variables of the commands before it,
// and saves them again afterwards. Background jobs it starts are killed at the
// end of the test.
func (r *readmeRun) bash(command string) (string, error) {
	script := fmt.Sprintf(". %q\n%s\nexport -p > %q\n", r.state, command, r.state)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = r.dir, r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := os.CreateTemp(r.tmp, "out")
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out // a file: a background job holding it does not block Wait
	err = cmd.Run()
	if cmd.Process != nil {
		pgid := cmd.Process.Pid
		r.t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after 60s")
	}
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}

// exported returns the KEYGATE_ variables the README's commands exported so far.
func (r *readmeRun) exported() []string {
	out, err := r.bash("env -0")
	if err != nil {
		r.t.Fatalf("reading the exported variables: %v\n%s", err, out)
	}
	var env []string
	for _, kv := range strings.Split(out, "\x00") {
		if strings.HasPrefix(kv, "KEYGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

func (r *readmeRun) startServer(where string) {
	t := r.t
	if r.server != nil {
		r.server.stop(t)
	}
	in := &instance{dir: r.dir, config: filepath.Join(r.dir, "config.yaml")}
	// in.serve passes on the test's environment: blank its KEYGATE_ variables
	// (an empty one is unset to keygate), as the commands' shell has none.
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "KEYGATE_") {
			env = append(env, name+"=")
		}
	}
	env = append(append(env, r.exported()...), "KEYGATE_LISTEN=127.0.0.1:0", "KEYGATE_LOG_FORMAT=json")
	t.Logf("%s: starting the server", where)
	r.server = in.serve(t, env...)
	r.addr = strings.TrimPrefix(r.server.url, "http://")
}

// nextKID is the kid of the key in state next.
func (r *readmeRun) nextKID(where string) string {
	out, err := r.bash("keygate keys list --json 2>/dev/null")
	if err != nil {
		r.t.Fatalf("%s: keys list for KID: %v\n%s", where, err, out)
	}
	var keys []struct{ KID, State string }
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		r.t.Fatalf("%s: keys list for KID: %v\n%s", where, err, out)
	}
	for _, k := range keys {
		if k.State == "next" {
			return k.KID
		}
	}
	r.t.Fatalf("%s: KID: no key in state next:\n%s", where, out)
	return ""
}

func tail(s string) string {
	if len(s) > readmeOutMax {
		return "…" + s[len(s)-readmeOutMax:]
	}
	return s
}

func writeShim(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// copyTracked copies the repository's tracked files (a fresh clone's tree, with
// the working tree's contents) into dir. Without git, it copies the directory
// minus what .gitignore and git keep out of a clone.
func copyTracked(t *testing.T, dir string) {
	t.Helper()
	var files []string
	if out, err := exec.Command("git", "ls-files", "-z").Output(); err == nil && len(out) > 0 {
		files = strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	} else {
		t.Logf("git ls-files: %v; copying the directory instead", err)
		err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch d.Name() {
			case ".git", "data", "node_modules":
				if d.IsDir() {
					return filepath.SkipDir
				}
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		fi, err := os.Lstat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLinks: every relative link in README.md names a file of the repository
// (nothing outside it, nothing missing from a clone).
func checkLinks(t *testing.T, readme, clone string) {
	t.Helper()
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		for _, m := range link.FindAllStringSubmatch(sc.Text(), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			clean := filepath.Clean(target)
			if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
				t.Errorf("README.md:%d: link %q points outside the repository", n, m[1])
				continue
			}
			if _, err := os.Stat(filepath.Join(clone, clean)); err != nil {
				t.Errorf("README.md:%d: link %q: not in the repository", n, m[1])
			}
		}
	}
}
