package examples_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// approveInBrowser is the person at the keyboard: in real headless Chromium
// they open the verification URI the script printed, log in, enter the user
// code, check what the page says about the request, and allow it.
func approveInBrowser(t *testing.T, tab context.Context, verificationURI, userCode, clientName, username, pw string) {
	t.Helper()
	type css = chromedp.CSS
	err := chromedp.Do(tab,
		chromedp.Navigate(verificationURI),
		chromedp.WaitVisible(css(`input[name=username]`)),
		chromedp.SendKeys(css(`input[name=username]`), username),
		chromedp.SendKeys(css(`input[name=password]`), pw),
		chromedp.Click(css(`button[type=submit]`)),
		chromedp.WaitVisible(css(`#user_code`)),
		chromedp.SendKeys(css(`#user_code`), userCode),
		chromedp.Click(css(`#continue`)),
		chromedp.WaitVisible(css(`#approve`)))
	if err != nil {
		t.Fatalf("entering the code in Chromium: %v", err)
	}
	heading, err1 := chromedp.Run(tab, chromedp.Text(css("h1")))
	shownCode, err2 := chromedp.Run(tab, chromedp.Text(css("#user-code")))
	if err := chromedp.Do(tab, chromedp.Click(css(`#approve`)), chromedp.WaitVisible(css(`p.notice`))); err != nil || err1 != nil || err2 != nil {
		t.Fatalf("allowing the device in Chromium: %v %v %v", err, err1, err2)
	}
	shownCode = strings.TrimSpace(shownCode)
	if !strings.Contains(heading, clientName) || shownCode != userCode {
		t.Errorf("the verification page showed %q and code %q, want %q and %q", heading, shownCode, clientName, userCode)
	}
}

// TestDeviceLoginPython runs examples/scripts/device_login.py against a live
// Keygate: it prints the verification URI and the user code; while it polls,
// a user in real headless Chromium logs in, enters the code and allows the
// device; the script then gets its tokens and prints the access token's
// claims.
func TestDeviceLoginPython(t *testing.T) {
	py := python(t)
	kg := kgtest.Start(t, kgtest.Options{Clients: []idp.Client{
		{ID: "cli", Name: "Keygate CLI example", Public: true, GrantTypes: []string{idp.GrantDeviceCode, idp.GrantRefreshToken},
			Scopes: []string{"openid", "profile"}},
	}})
	if _, err := kg.IDP.Directory().CreateUser(context.Background(), idp.NewUser{Username: "alice", Password: "alice's long passphrase"}); err != nil {
		t.Fatal(err)
	}
	tab := kgtest.Chromium(t)(t)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "device_login.py", kg.URL, "cli", "openid profile")
	cmd.Dir = "scripts"
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	prompt := regexp.MustCompile(`open (\S+) and enter the code ([B-Z]{4}-[B-Z]{4})$`)
	var m []string
	for m == nil && sc.Scan() {
		lines = append(lines, sc.Text())
		m = prompt.FindStringSubmatch(sc.Text())
	}
	if m == nil {
		cmd.Wait()
		t.Fatalf("device_login.py printed no code:\n%s\n%s", strings.Join(lines, "\n"), stderr.String())
	}
	if m[1] != kg.URL+"/device" {
		t.Errorf("verification URI %s, want %s/device", m[1], kg.URL)
	}
	approveInBrowser(t, tab, m[1], m[2], "Keygate CLI example", "alice", "alice's long passphrase")
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("device_login.py: %v\n%s\n%s", err, strings.Join(lines, "\n"), stderr.String())
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &claims); err != nil {
		t.Fatalf("last line is not the claims: %v\n%s", err, strings.Join(lines, "\n"))
	}
	alice, _ := kg.IDP.Directory().UserByLogin(context.Background(), "alice")
	if claims["sub"] != alice.ID || claims["client_id"] != "cli" || claims["preferred_username"] != "alice" || claims["scope"] != "openid profile" {
		t.Errorf("claims %v", claims)
	}
	if out := strings.Join(lines, "\n"); !strings.Contains(out, "refresh token: yes, id token: yes") {
		t.Errorf("output:\n%s", out)
	}
}
