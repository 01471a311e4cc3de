package kgtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium (KEYGATE_CHROMIUM overrides it). When it
// is missing the test skips, or fails if KEYGATE_REQUIRE_BROWSER=1.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := "/usr/bin/chromium"
	if p := os.Getenv("KEYGATE_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("Chromium not found at %s (apt-get install chromium): %v", path, err)
		if os.Getenv("KEYGATE_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Chromium runs one headless Chromium (Debian's, never downloaded) with a
// fresh profile for the test, and returns a func that opens a tab in a new
// browser context: its own cookies, as a separate browser would have. The
// flags keep it off the network this machine does not have. Without
// Chromium the test skips, or fails when KEYGATE_REQUIRE_BROWSER=1 (as CI
// sets).
func Chromium(t *testing.T) func(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 700),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return func(t *testing.T) context.Context {
		t.Helper()
		tab, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		if err := chromedp.Do(tab); err != nil {
			t.Fatalf("open a tab: %v", err)
		}
		ctx, cancelTimeout := context.WithTimeout(tab, 30*time.Second)
		t.Cleanup(cancelTimeout)
		return ctx
	}
}
