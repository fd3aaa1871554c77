// Package browsertest starts Debian's chromium headless for the console's browser tests, as
// this machine kind needs it, and says where screenshots go. The console's own test and the
// end-to-end suite share it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium (make chromium installs it). Missing, the browser test
// fails: a test that skipped quietly would pass a run that never drove a browser. Only an
// explicit LOANFLOW_SKIP_BROWSER=1 skips it, and the skip says so.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("LOANFLOW_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg, skip := whenMissing(os.Getenv("LOANFLOW_SKIP_BROWSER"))
	if skip {
		t.Skip(msg)
	}
	t.Fatal(msg)
	return ""
}

// whenMissing says what a test does without chromium, given LOANFLOW_SKIP_BROWSER: it skips
// only when that is exactly "1", and fails otherwise.
func whenMissing(skipBrowser string) (msg string, skip bool) {
	if skipBrowser == "1" {
		return "chromium is missing and LOANFLOW_SKIP_BROWSER=1: the browser test is skipped, nothing was checked in a browser", true
	}
	return "chromium is missing: make chromium installs Debian's chromium (apt-get install chromium), " +
		"LOANFLOW_CHROMIUM names another binary; LOANFLOW_SKIP_BROWSER=1 skips the browser tests explicitly", false
}

// Artifacts is where a browser test leaves its screenshots: LOANFLOW_ARTIFACTS_DIR, or
// testdata/artifacts of the test's package (git-ignored).
func Artifacts(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LOANFLOW_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// Start starts a headless chromium as this machine needs it: no sandbox (root), no GPU, no
// background networking (the network is closed), a fresh profile. The context returned bounds
// the test's browser steps.
func Start(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Headless,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first call starts the browser and must not have a timeout: it would stop the browser.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}
