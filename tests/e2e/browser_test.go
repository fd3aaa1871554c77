package e2e_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/console/consoletest/browsertest"
)

// The officer account start() configures.
const (
	officerLogin    = "officer"
	officerPassword = "e2e-officer-password"
)

// TestBrowserUnderwritingThroughTheAllInOne is the path, whole: Yandex posts a loan the
// policy refers and is told pending; an officer signs in to the all-in-one's console in
// headless Chromium, takes the case from the live queue and approves it full_approved for
// 2 000 000 ₽; the next polls answer done with that offer. The audit holds the referral, the
// take and the decision with the officer's identity; the console's timeline shows them and its
// dashboard counts the application. A dashboard screenshot is saved as an artifact.
func TestBrowserUnderwritingThroughTheAllInOne(t *testing.T) {
	ctx := browsertest.Start(t)
	s := start(t, options{budget: 200 * time.Millisecond})
	consoleURL := "http://" + s.sys.ConsoleAddr()
	out := browsertest.Artifacts(t)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	id := "4f2a8c6e-1b3d-4e5f-9a7c-2d4e6f8a0b1c"
	s.postReferred(id)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(consoleURL+"/queue?lang=ru"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#login"), officerLogin),
		chromedp.SendKeys(chromedp.CSS("#password"), officerPassword),
		chromedp.Click(chromedp.CSS("#signin")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	row := `tr[data-search-id="` + id + `"]`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(row+" a.case-link"))); err != nil {
		t.Fatalf("the referral on the live queue: %v", err)
	}
	if phone := text(row + " td:nth-child(5)"); phone != "93******40" {
		t.Errorf("queue shows the phone as %q, want it masked", phone)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+" a.case-link")),
		chromedp.WaitVisible(chromedp.CSS("#take")),
		chromedp.Click(chromedp.CSS("#take")),
		chromedp.WaitVisible(chromedp.CSS("#decide-form")),
	); err != nil {
		t.Fatalf("take: %v", err)
	}
	if takeAgain, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#take-again").length`)); err != nil || takeAgain != 0 {
		t.Errorf("the take is not recorded in the audit (take again offered: %d, %v)", takeAgain, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#verdict-approve")),
		chromedp.SetValue(chromedp.CSS("#approval"), string(partnerapi.OfferFullApproved)),
		chromedp.Clear(chromedp.CSS("#amount")),
		chromedp.SendKeys(chromedp.CSS("#amount"), "2 000 000"),
		chromedp.SendKeys(chromedp.CSS("#comment"), "Доход подтверждён выпиской по зарплатному проекту"),
		chromedp.Click(chromedp.CSS("#submit-decision")),
		chromedp.WaitVisible(chromedp.CSS("#decision-outcome")),
	); err != nil {
		t.Fatalf("approve: %v", err)
	}
	shots := map[string][]byte{}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		shots[name] = png
	}
	shot("allinone-case-approved.png")
	if outcome, by := text("#decision-outcome"), text("#decided-by"); !strings.Contains(outcome, "2\u00a0000\u00a0000,00") || !strings.HasPrefix(by, officerLogin) {
		t.Errorf("decision shown: %q by %q", outcome, by)
	}

	// Yandex's next polls answer done with the approved offer.
	a := s.until(id)
	if got, want := doneWith(t, a, partnerapi.OfferFullApproved), partnerapi.Money(2_000_000_00); got != want {
		t.Errorf("largest offer up to %s, want the officer's %s", got, want)
	}

	// Every step is audited with the officer's identity.
	tr := s.underwritingTrail(id)
	tr.before(t, events.TypeApplicationReceived, events.TypeApplicationReferred, events.TypeUnderwritingTaken,
		events.TypeUnderwritingDecided, events.TypeDecisionMade)
	var taken events.UnderwritingTaken
	tr.one(t, events.TypeUnderwritingTaken, &taken)
	if taken.TakenBy != officerLogin || taken.TakenAt.IsZero() {
		t.Errorf("taken record %+v, want taken by %s", taken, officerLogin)
	}
	var decided events.UnderwritingDecided
	tr.one(t, events.TypeUnderwritingDecided, &decided)
	if decided.DecidedBy != officerLogin || decided.Decision.Approval != partnerapi.OfferFullApproved ||
		decided.Decision.MaxAmount != 2_000_000_00 || !slices.Contains(decided.ReasonCodes, "OFFICER_APPROVED") {
		t.Errorf("decided record %+v, want %s's full approval of 2 000 000", decided, officerLogin)
	}
	if decided.DecidedAt.Before(taken.TakenAt) {
		t.Errorf("decided at %s, before taken at %s", decided.DecidedAt, taken.TakenAt)
	}

	// The console's timeline reads the same audit.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(consoleURL+"/applications/"+id+"?lang=en"),
		chromedp.WaitVisible(chromedp.CSS("#timeline")),
	); err != nil {
		t.Fatalf("timeline: %v", err)
	}
	for _, typ := range []string{events.TypeUnderwritingTaken, events.TypeUnderwritingDecided} {
		if got := text(`tr[data-event="` + typ + `"]`); !strings.Contains(got, "console") || !strings.Contains(got, officerLogin) {
			t.Errorf("timeline row of %s: %q, want the console's stage and the officer", typ, got)
		}
	}

	shot("allinone-timeline.png")

	// A search by the phone finds it, showing the phone only masked.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(consoleURL+"/search?lang=en"),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "+7 933 044-50-40"),
		chromedp.Click(chromedp.CSS("#search")),
		chromedp.WaitVisible(chromedp.CSS("#hits")),
	); err != nil {
		t.Fatalf("search by phone: %v", err)
	}
	if hits := text("#hits"); !strings.Contains(hits, id) || !strings.Contains(hits, "93******40") {
		t.Errorf("search hits: %q, want %s with the masked phone", hits, id)
	}
	if page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err != nil || strings.Contains(page, knownA) {
		t.Errorf("the search page shows the phone in clear (%v)", err)
	}

	// The dashboard counts the application: received, referred, decided by an officer.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(consoleURL+"/dashboard?lang=en"),
		chromedp.WaitVisible(chromedp.CSS("#dashboard svg")),
	); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	natstest.WaitFor(t, "the dashboard to count the application", func() bool {
		_ = chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#dash-received")))
		n, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#dash-received")))
		if err != nil {
			return false
		}
		got, err := strconv.Atoi(strings.TrimSpace(n))
		return err == nil && got == 1
	})
	if got := text("#dash-referred"); got != "1" {
		t.Errorf("dashboard's referred count: %q, want 1", got)
	}
	if got := text("#dash-underwriting"); !strings.Contains(got, "by an officer 1") {
		t.Errorf("dashboard's underwriting card: %q, want one decided by an officer", got)
	}
	shot("allinone-dashboard.png")
	for name, png := range shots {
		path := filepath.Join(out, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}
}
