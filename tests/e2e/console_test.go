package e2e_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/console/consoletest"
)

// TestConsoleDemoAccountsThroughTheAllInOne: with no accounts configured the all-in-one's
// console has a demo officer and auditor, their passwords in the data directory. An
// unauthenticated request gets the sign-in page; the auditor sees the referred application
// but may not take it; the officer may.
func TestConsoleDemoAccountsThroughTheAllInOne(t *testing.T) {
	dir := t.TempDir()
	s := start(t, options{dir: dir, budget: 100 * time.Millisecond, configure: func(c *allinone.Config) { c.Console.Users = nil }})
	base := "http://" + s.sys.ConsoleAddr()
	if s.sys.ConsoleAddr() == s.sys.HTTPAddr() {
		t.Fatalf("the console listens on the port Yandex calls (%s)", s.sys.HTTPAddr())
	}
	password := func(role string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "console-"+role+".password"))
		if err != nil {
			t.Fatalf("demo %s password: %v", role, err)
		}
		return strings.TrimSpace(string(b))
	}

	anon := consoletest.New(t, base)
	resp, _ := anon.Do(http.MethodGet, "/queue", nil)
	if got, want := resp.Header.Get("Location"), "/signin?next=%2Fqueue"; resp.StatusCode != http.StatusSeeOther || got != want {
		t.Errorf("unauthenticated /queue: %d to %q, want 303 to %q", resp.StatusCode, got, want)
	}
	if resp, body := anon.Do(http.MethodGet, "/signin", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="password"`) {
		t.Errorf("sign-in page: %d", resp.StatusCode)
	}

	id := "9c8b7a6f-5e4d-4c3b-8a2f-1e0d9c8b7a6f"
	s.postReferred(id)
	page := "/cases/" + id
	auditor := consoletest.New(t, base)
	auditor.SignIn("auditor", password("auditor"))
	natstest.WaitFor(t, "the referral on the auditor's queue", func() bool {
		_, body := auditor.Do(http.MethodGet, "/queue", nil)
		return strings.Contains(body, id)
	})
	if resp, _ := auditor.Post(page, page+"/take", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("auditor's take: %d, want 403", resp.StatusCode)
	}
	if resp, _ := auditor.Post(page, page+"/decide", url.Values{"verdict": {"approve"}, "approval": {"full_approved"}, "amount": {"2000000"}, "comment": {"x"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("auditor's decision: %d, want 403", resp.StatusCode)
	}

	officer := consoletest.New(t, base)
	officer.SignIn("officer", password("officer"))
	resp, _ = officer.Post(page, page+"/take", url.Values{})
	if got, want := resp.Header.Get("Location"), page+"?msg=taken"; got != want {
		t.Errorf("officer's take: to %q, want %q", got, want)
	}
	if a := s.post(`{"search_id":"` + id + `"}`); a.body["status"] != "pending" {
		t.Errorf("taken but undecided: %s, want pending", a.raw)
	}
}
