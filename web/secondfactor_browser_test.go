package web_test

// TOTP in real headless Chromium: alice turns it on from /account (the QR
// code is a server-rendered PNG the page loads), then signs in to a relying
// party through the code step, with a code computed here, and the app's ID
// token (verified by go-oidc) says amr [pwd otp mfa].

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/keygate/keygate/idp"
)

func TestBrowserTOTP(t *testing.T) {
	t.Parallel()
	kg, newTab := startWithAlice(t)
	rp := newPublicApp(t, kg, &idp.Client{ID: "webapp", Name: "Example App",
		GrantTypes: []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid", "profile", "email"}})

	tab := newTab(t)
	do(t, tab, "open /login", chromedp.Navigate(kg.URL+"/login"))
	fillLogin(t, tab, "alice", brAlicePW)
	do(t, tab, "start the set-up", chromedp.WaitVisible(chromedp.CSS(`#two-factor`)),
		chromedp.Click(chromedp.CSS(`form[action="/account/totp/start"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#totp-secret`)))
	// Wait until the image has loaded or failed (a busy machine may still be
	// fetching it); its width then says which.
	_, _ = chromedp.Run(tab, chromedp.Poll[bool](`document.querySelector(".qr img").complete`))
	loaded, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelector(".qr img").naturalWidth`))
	if err != nil || loaded != 240 {
		t.Errorf("the QR code image did not load: width %d, %v", loaded, err)
	}
	secret := text(t, tab, "#totp-secret")
	screenshot(t, tab, "totp-enrol.png")
	enrolledAt := time.Now()
	code, err := totp.GenerateCode(secret, enrolledAt)
	if err != nil {
		t.Fatal(err)
	}
	do(t, tab, "confirm with a code", chromedp.SendKeys(chromedp.CSS(`input[name=code]`), code),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`#recovery-codes`)))
	if n, _ := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("#recovery-codes li").length`)); n != idp.RecoveryCodeCount {
		t.Errorf("%d recovery codes shown, want %d", n, idp.RecoveryCodeCount)
	}

	login := newTab(t)
	do(t, login, "start at the relying party", chromedp.Navigate(rp.srv.URL+"/start"))
	fillLogin(t, login, "alice", brAlicePW)
	do(t, login, "see the code step", chromedp.WaitVisible(chromedp.CSS(`input[name=code]`)))
	screenshot(t, login, "totp-code.png")
	// The confirming code's step is spent: use a later one (the next step is
	// accepted early, for clock drift).
	at := time.Now()
	if at.Unix()/30 == enrolledAt.Unix()/30 {
		at = at.Add(30 * time.Second)
	}
	code, err = totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	do(t, login, "enter the code", chromedp.SendKeys(chromedp.CSS(`input[name=code]`), code),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	res := rp.lastResult(t)
	amr, _ := res.IDClaims["amr"].([]any)
	if !slices.Equal(amr, []any{"pwd", "otp", "mfa"}) || res.IDClaims["acr"] != idp.ACRMultiFactor {
		t.Errorf("the app's id_token: amr %v acr %v", res.IDClaims["amr"], res.IDClaims["acr"])
	}
}

// screenshot writes docs/name from tab when KEYGATE_UPDATE_SCREENSHOT=1,
// at the size of docs/login.png.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	capture(t, tab, name, chromedp.CaptureScreenshot())
}

// screenshotPage is screenshot of the whole page, however long, not only
// the viewport: for /account, whose sections run below the first screen.
func screenshotPage(t *testing.T, tab context.Context, name string) {
	t.Helper()
	capture(t, tab, name, chromedp.FullScreenshot(100))
}

// capture writes the PNG shot takes at a 480-pixel-wide viewport to
// docs/name, when KEYGATE_UPDATE_SCREENSHOT=1.
func capture(t *testing.T, tab context.Context, name string, shot chromedp.Action[[]byte]) {
	t.Helper()
	if os.Getenv("KEYGATE_UPDATE_SCREENSHOT") != "1" {
		return
	}
	do(t, tab, "size the viewport", chromedp.EmulateViewport(480, 800, chromedp.EmulateScale(2)))
	png, err := chromedp.Run(tab, shot)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "docs", name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}
