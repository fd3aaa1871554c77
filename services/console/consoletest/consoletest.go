// Package consoletest is a browser-like HTTP client of the officers' console for tests in any
// module (the console's own, the end-to-end suite, the deployment checks): cookies kept,
// redirects not followed, and forms sent with the anti-forgery token of the page they are on.
package consoletest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Client talks to one console as one signed-in (or not yet) user.
type Client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

// New returns a client of the console at base (e.g. "http://127.0.0.1:8081").
func New(t testing.TB, base string) *Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Do sends one request, form-encoded when form is not nil, and returns the answer and its body.
func (c *Client) Do(method, path string, form url.Values) (*http.Response, string) {
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

// Token is the anti-forgery token of the page at path.
func (c *Client) Token(path string) string {
	c.t.Helper()
	resp, body := c.Do(http.MethodGet, path, nil)
	m := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		c.t.Fatalf("GET %s: %d, no csrf token", path, resp.StatusCode)
	}
	return m[1]
}

// Post sends form to path with the anti-forgery token of page.
func (c *Client) Post(page, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.Token(page))
	return c.Do(http.MethodPost, path, form)
}

// SignIn signs in and expects to land on the queue.
func (c *Client) SignIn(login, password string) {
	c.t.Helper()
	resp, _ := c.Post("/signin", "/signin", url.Values{"login": {login}, "password": {password}, "next": {"/queue"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/queue" {
		c.t.Fatalf("sign in as %s: %d to %q", login, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// HTTP is the client's own http.Client (its cookies), for a request built by hand.
func (c *Client) HTTP() *http.Client { return c.hc }
