package e2e_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// consoleClient is a browser-like HTTP client of the console: cookies kept, redirects not
// followed.
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *consoleClient) do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post sends form with the anti-forgery token of page.
func (c *consoleClient) post(page, path string, form url.Values) *http.Response {
	c.t.Helper()
	resp, body := c.do(http.MethodGet, page, nil)
	m := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		c.t.Fatalf("GET %s: %d, no csrf token", page, resp.StatusCode)
	}
	form.Set("csrf", m[1])
	resp, _ = c.do(http.MethodPost, path, form)
	return resp
}

func (c *consoleClient) signIn(login, password string) {
	c.t.Helper()
	resp := c.post("/signin", "/signin", url.Values{"login": {login}, "password": {password}, "next": {"/queue"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/queue" {
		c.t.Fatalf("sign in as %s: %d to %q", login, resp.StatusCode, resp.Header.Get("Location"))
	}
}

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

	anon := newConsoleClient(t, base)
	resp, _ := anon.do(http.MethodGet, "/queue", nil)
	if got, want := resp.Header.Get("Location"), "/signin?next=%2Fqueue"; resp.StatusCode != http.StatusSeeOther || got != want {
		t.Errorf("unauthenticated /queue: %d to %q, want 303 to %q", resp.StatusCode, got, want)
	}
	if resp, body := anon.do(http.MethodGet, "/signin", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="password"`) {
		t.Errorf("sign-in page: %d", resp.StatusCode)
	}

	id := "9c8b7a6f-5e4d-4c3b-8a2f-1e0d9c8b7a6f"
	s.postReferred(id)
	page := "/cases/" + id
	auditor := newConsoleClient(t, base)
	auditor.signIn("auditor", password("auditor"))
	natstest.WaitFor(t, "the referral on the auditor's queue", func() bool {
		_, body := auditor.do(http.MethodGet, "/queue", nil)
		return strings.Contains(body, id)
	})
	if resp := auditor.post(page, page+"/take", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("auditor's take: %d, want 403", resp.StatusCode)
	}
	if resp := auditor.post(page, page+"/decide", url.Values{"verdict": {"approve"}, "approval": {"full_approved"}, "amount": {"2000000"}, "comment": {"x"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("auditor's decision: %d, want 403", resp.StatusCode)
	}

	officer := newConsoleClient(t, base)
	officer.signIn("officer", password("officer"))
	if got, want := officer.post(page, page+"/take", url.Values{}).Header.Get("Location"), page+"?msg=taken"; got != want {
		t.Errorf("officer's take: to %q, want %q", got, want)
	}
	if a := s.post(`{"search_id":"` + id + `"}`); a.body["status"] != "pending" {
		t.Errorf("taken but undecided: %s, want pending", a.raw)
	}
}
