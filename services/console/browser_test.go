package console

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/console/consoletest/browsertest"
)

// TestBrowserUnderwriting is the officer's whole path in a real browser: the queue asks for a
// sign-in, the referred application shows up on the live queue, the officer takes it and
// approves it within the bounds, and the decision goes out as loan.underwriting.decided.v1.
// Screenshots of the case and of the dashboard are saved as artifacts.
func TestBrowserUnderwriting(t *testing.T) {
	ctx := browsertest.Start(t)
	e := startConsole(t, natstest.Start(t).ClientURL())
	out := browsertest.Artifacts(t)
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/queue?lang=ru"),
		chromedp.WaitVisible(chromedp.ID("login")),
	); err != nil {
		t.Fatalf("open the queue: %v", err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(loc, "/signin?next=") {
		t.Errorf("the queue did not ask for a sign-in: %s (%v)", loc, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("login"), "ivanova"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("queue-empty")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	// Chromium keeps the Secure, __Host- prefixed session cookie of http://127.0.0.1: the
	// sign-in above would have come back to the sign-in page otherwise.
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		return res.Cookies, err
	})
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == "__Host-lf_session" {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HTTPOnly || session.Path != "/" {
		t.Errorf("chromium's session cookie: %+v, want __Host-lf_session Secure, HttpOnly, Path=/", session)
	}

	// The referral arrives while the officer looks at the queue: the page refreshes itself.
	ev := referral(t, 2*time.Minute)
	publishReferral(t, e.js, ev)
	row := `tr[data-search-id="` + ev.SearchID + `"]`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(row+" a.case-link"))); err != nil {
		t.Fatalf("the referral on the live queue: %v", err)
	}
	if left := text(chromedp.CSS(row + " [data-deadline]")); !strings.Contains(left, ":") {
		t.Errorf("time left shows %q", left)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+" a.case-link")),
		chromedp.WaitVisible(chromedp.ID("take")),
		chromedp.Click(chromedp.ID("take")),
		chromedp.WaitVisible(chromedp.ID("decide-form")),
		chromedp.Click(chromedp.ID("verdict-approve")),
		chromedp.Clear(chromedp.ID("amount")),
		chromedp.SendKeys(chromedp.ID("amount"), "2 000 000"),
		chromedp.SendKeys(chromedp.ID("comment"), "Подтверждён доход по зарплатному проекту"),
		chromedp.Click(chromedp.ID("submit-decision")),
		chromedp.WaitVisible(chromedp.ID("decision-outcome")),
	); err != nil {
		t.Fatalf("take and approve: %v", err)
	}
	outcome, decidedBy := text("#decision-outcome"), text("#decided-by")
	if !strings.Contains(outcome, "полное одобрение") || !strings.Contains(outcome, "2\u00a0000\u00a0000,00") || !strings.HasPrefix(decidedBy, "ivanova") {
		t.Errorf("decision shown: %q by %q", outcome, decidedBy)
	}
	casePNG, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	got := decidedEvents(t, e.js, ev.SearchID)
	if len(got) != 1 || got[0].DecidedBy != "ivanova" || got[0].Decision.MaxAmount != 2_000_000_00 {
		t.Fatalf("decided events: %+v", got)
	}

	// Some traffic of the last hour for the dashboard to draw, as the audit recorded it.
	now := time.Now().UTC()
	for i := range 40 {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		product, decision := partnerapi.ProductLoan, partnerapi.DecisionHasApprove
		if i%3 == 0 {
			product = partnerapi.ProductCreditCard
		}
		if i%7 == 0 {
			decision = partnerapi.DecisionRejected
		}
		at := now.Add(-time.Duration(i) * 83 * time.Second)
		audited(t, e, events.TypeApplicationReceived, id, events.ApplicationReceived{SearchID: id, ProductType: product, ReceivedAt: at})
		if i%11 == 5 {
			audited(t, e, events.TypeApplicationFailed, id, events.ApplicationFailed{SearchID: id, Stage: "scoring", Reason: events.ReasonRetriesExhausted, FailedAt: at.Add(20 * time.Second)})
			continue
		}
		audited(t, e, events.TypeDecisionMade, id, events.DecisionMade{SearchID: id, ProductType: product, Decision: decision,
			DecidedAt: at.Add(time.Duration(40+i*15) * time.Millisecond)})
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/dashboard?lang=en"),
		chromedp.WaitVisible(chromedp.CSS("#dashboard svg")),
	); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	natstest.WaitFor(t, "the dashboard to count the traffic", func() bool {
		_ = chromedp.Do(ctx, chromedp.Reload())
		n, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("dash-received")))
		return err == nil && n == "40"
	})
	dashPNG, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	for name, png := range map[string][]byte{"case-approved.png": casePNG, "dashboard.png": dashPNG} {
		path := filepath.Join(out, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}
}
