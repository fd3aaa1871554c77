package console

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/console/consoletest"
	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

func TestAuth(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL())
	ev := referral(t, time.Minute)
	publishReferral(t, e.js, ev)
	natstest.WaitFor(t, "the case", func() bool { _, ok := getCase(t, e.kv, ev.SearchID); return ok })
	page := "/cases/" + ev.SearchID

	t.Run("unauthenticated gets the sign-in page", func(t *testing.T) {
		c := newClient(t, e.url)
		for _, path := range []string{"/queue", page, "/dashboard", "/search", "/applications/" + ev.SearchID, "/"} {
			resp, _ := c.Do("GET", path, nil)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?next=") {
				t.Errorf("GET %s: %d to %q, want 303 to the sign-in page", path, resp.StatusCode, loc)
			}
		}
		resp, _ := c.Do("POST", page+"/take", url.Values{"csrf": {"x"}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin") {
			t.Errorf("POST take: %d to %q", resp.StatusCode, loc)
		}
		resp, body := c.Do("GET", "/signin?next=%2Fdashboard", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) || !strings.Contains(body, `value="/dashboard"`) {
			t.Errorf("sign-in page: %d", resp.StatusCode)
		}
	})

	t.Run("wrong password is refused and logged", func(t *testing.T) {
		c := newClient(t, e.url)
		tok := c.Token("/signin")
		resp, body := c.Do("POST", "/signin", url.Values{"csrf": {tok}, "login": {"ivanova"}, "password": {"wrong password"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Неверный логин или пароль") {
			t.Errorf("wrong password: %d", resp.StatusCode)
		}
		resp, _ = c.Do("POST", "/signin", url.Values{"csrf": {tok}, "login": {"9330445040"}, "password": {testPassword}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("unknown login: %d", resp.StatusCode)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `"msg":"sign-in refused: wrong login or password"`) || !strings.Contains(logs, `"login":"ivanova"`) {
			t.Errorf("refusal not logged:\n%s", logs)
		}
		// The answer's request id finds the refusal's log line.
		id := resp.Header.Get("X-Request-Id")
		if len(id) < 16 {
			t.Fatalf("X-Request-Id = %q, want a generated id", id)
		}
		if got := logLines(e, `"msg":"sign-in refused: wrong login or password"`, `"request_id":"`+id+`"`); got != 1 {
			t.Errorf("%d refusal lines with request_id %s, want 1:\n%s", got, id, logs)
		}
		if strings.Contains(logs, "9330445040") || strings.Contains(logs, "wrong password") {
			t.Error("the log holds what was typed: a phone number or the password")
		}
		if resp, _ := c.Do("GET", "/queue", nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after a refused sign-in, /queue answers %d", resp.StatusCode)
		}
	})

	t.Run("sign-in form without its token is refused and logged", func(t *testing.T) {
		c := newClient(t, e.url)
		before := logLines(e, `"level":"WARN","msg":"forged form refused"`, `"why":"sign-in token missing or wrong"`)
		resp, _ := c.Do("POST", "/signin", url.Values{"login": {"ivanova"}, "password": {testPassword}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("sign-in without token: %d, want 403", resp.StatusCode)
		}
		if got := logLines(e, `"level":"WARN","msg":"forged form refused"`, `"why":"sign-in token missing or wrong"`, `"path":"/signin"`); got != before+1 {
			t.Errorf("%d log lines of the refused sign-in form, want %d", got, before+1)
		}
	})

	t.Run("forged form is refused and logged", func(t *testing.T) {
		c := newClient(t, e.url)
		c.SignIn("ivanova", testPassword)
		forged := []string{`"level":"WARN","msg":"forged form refused"`, `"why":"anti-forgery token missing or wrong"`, `"path":"` + page + `/take"`, `"login":"ivanova"`}
		for _, tok := range []string{"", "forged", strings.Repeat("0", 64)} {
			before := logLines(e, forged...)
			resp, body := c.Do("POST", page+"/take", url.Values{"csrf": {tok}})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Форма отклонена") {
				t.Errorf("token %q: %d, want 403 and the refusal", tok, resp.StatusCode)
			}
			if got := logLines(e, forged...); got != before+1 {
				t.Errorf("token %q: %d log lines of the forged form, want %d:\n%s", tok, got, before+1, e.logs.String())
			}
		}
		// A token of another session does not do either.
		other := newClient(t, e.url)
		other.SignIn("petrov", testPassword)
		before := logLines(e, forged...)
		resp, _ := c.Do("POST", page+"/take", url.Values{"csrf": {other.Token(page)}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("another session's token: %d, want 403", resp.StatusCode)
		}
		if got := logLines(e, forged...); got != before+1 {
			t.Errorf("another session's token: %d log lines, want %d", got, before+1)
		}
		crossSite := []string{`"level":"WARN","msg":"forged form refused"`, `"why":"cross-origin request"`, `"path":"` + page + `/take"`}
		beforeCross := logLines(e, crossSite...)
		// Cross-origin, even with the right token.
		form := url.Values{"csrf": {c.Token(page)}}
		req, _ := http.NewRequest("POST", e.url+page+"/take", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := c.HTTP().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site: %d, want 403", resp.StatusCode)
		}
		if cs, _ := getCase(t, e.kv, ev.SearchID); cs.State != "open" {
			t.Errorf("a forged form changed the case: %s", cs.State)
		}
		if got := logLines(e, crossSite...); got != beforeCross+1 {
			t.Errorf("%d log lines of the cross-site form, want %d", got, beforeCross+1)
		}
	})

	t.Run("auditor reads but cannot act", func(t *testing.T) {
		c := newClient(t, e.url)
		c.SignIn("auditor", testPassword)
		resp, body := c.Do("GET", page, nil)
		if resp.StatusCode != http.StatusOK || strings.Contains(body, `id="take"`) || !strings.Contains(body, "только просмотр") {
			t.Errorf("auditor's case page: %d", resp.StatusCode)
		}
		for _, action := range []string{"/take", "/decide"} {
			resp, _ := c.Post(page, page+action, url.Values{"verdict": {"approve"}, "approval": {"full_approved"}, "amount": {"100000"}, "comment": {"x"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("auditor %s: %d, want 403", action, resp.StatusCode)
			}
		}
		if cs, _ := getCase(t, e.kv, ev.SearchID); cs.State != "open" {
			t.Errorf("an auditor changed the case: %s", cs.State)
		}
	})

	t.Run("sign out ends the session", func(t *testing.T) {
		c := newClient(t, e.url)
		c.SignIn("ivanova", testPassword)
		u, _ := url.Parse(e.url)
		saved := c.HTTP().Jar.Cookies(u)
		resp, _ := c.Post("/queue", "/signout", nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
			t.Fatalf("sign out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		c.HTTP().Jar.SetCookies(u, saved) // the old cookie, replayed
		if resp, _ := c.Do("GET", "/queue", nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("the signed-out session still works: %d", resp.StatusCode)
		}
	})

	t.Run("session cookie flags", func(t *testing.T) {
		c := newClient(t, e.url)
		resp, _ := c.Do("GET", "/signin", nil)
		var signin *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "lf_signin" {
				signin = ck
			}
		}
		if signin == nil || !signin.Secure || !signin.HttpOnly || signin.SameSite != http.SameSiteStrictMode {
			t.Errorf("sign-in cookie %+v: want Secure, HttpOnly, SameSite=Strict", signin)
		}
		tok := c.Token("/signin")
		resp, _ = c.Do("POST", "/signin", url.Values{"csrf": {tok}, "login": {"ivanova"}, "password": {testPassword}})
		var found bool
		for _, ck := range resp.Cookies() {
			switch ck.Name {
			case "__Host-lf_session":
				found = true
				// __Host- makes the browser insist on Secure, Path=/ and no Domain.
				if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
					t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", ck)
				}
			case "lf_session":
				t.Errorf("session cookie without the __Host- prefix: %+v", ck)
			}
		}
		if !found {
			t.Error("no __Host-lf_session cookie")
		}
		// The client's jar, like a browser, sends the Secure cookie to 127.0.0.1 over http.
		if resp, _ := c.Do("GET", "/queue", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("signed in with the Secure cookie over http://127.0.0.1, /queue answers %d", resp.StatusCode)
		}
	})

	t.Run("language switch", func(t *testing.T) {
		c := newClient(t, e.url)
		c.SignIn("ivanova", testPassword)
		_, body := c.Do("GET", "/queue?lang=en", nil)
		if !strings.Contains(body, "Underwriting queue") {
			t.Error("?lang=en does not switch to English")
		}
		_, body = c.Do("GET", "/queue", nil)
		if !strings.Contains(body, "Underwriting queue") {
			t.Error("the language is not remembered")
		}
		_, body = c.Do("GET", "/queue?lang=ru", nil)
		if !strings.Contains(body, "Очередь андеррайтинга") {
			t.Error("?lang=ru does not switch back")
		}
		// The language links keep the page's query: a sign-in keeps where it goes next.
		anon := newClient(t, e.url)
		_, body = anon.Do("GET", "/signin?next=%2Fdashboard", nil)
		if !strings.Contains(body, `href="/signin?lang=en&amp;next=%2Fdashboard"`) {
			t.Errorf("the English link of the sign-in page drops next:\n%s", body)
		}
		_, body = anon.Do("GET", "/signin?lang=en&next=%2Fdashboard", nil)
		if !strings.Contains(body, `name="next" value="/dashboard"`) || !strings.Contains(body, `href="/signin?lang=ru&amp;next=%2Fdashboard"`) {
			t.Errorf("after switching, the sign-in page lost next:\n%s", body)
		}
	})
}

// TestSignOutHoldsEverywhere signs out on one console; the same cookie is then refused by a
// second console on the same NATS, and by a console started afresh with the same session key
// (the all-in-one keeps its key in the data directory).
func TestSignOutHoldsEverywhere(t *testing.T) {
	srv := natstest.Start(t)
	one, two := startConsole(t, srv.ClientURL()), startConsole(t, srv.ClientURL())
	c := newClient(t, one.url)
	c.SignIn("ivanova", testPassword)
	u, _ := url.Parse(one.url)
	saved := c.HTTP().Jar.Cookies(u)
	replay := func(e *env) int {
		t.Helper()
		r := newClient(t, e.url)
		eu, _ := url.Parse(e.url)
		r.HTTP().Jar.SetCookies(eu, saved)
		resp, _ := r.Do("GET", "/queue", nil)
		return resp.StatusCode
	}
	if got := replay(two); got != http.StatusOK {
		t.Fatalf("before signing out, the second console answers the cookie with %d, want 200", got)
	}
	resp, _ := c.Post("/queue", "/signout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("sign out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := replay(two); got != http.StatusSeeOther {
		t.Errorf("the second console answers the signed-out cookie with %d, want 303 to the sign-in page", got)
	}
	if got := replay(one); got != http.StatusSeeOther {
		t.Errorf("the first console answers the signed-out cookie with %d", got)
	}
	one.stop()
	three := startConsole(t, srv.ClientURL())
	if got := replay(three); got != http.StatusSeeOther {
		t.Errorf("a console started afresh answers the signed-out cookie with %d", got)
	}
	// Another officer's session is untouched.
	other := newClient(t, three.url)
	other.SignIn("petrov", testPassword)
	if resp, _ := other.Do("GET", "/queue", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("another session after the sign-out: %d", resp.StatusCode)
	}
	// The revocation lives as long as the session could: its key's TTL is the time left.
	js := one.js
	kv, err := js.KeyValue(context.Background(), topology.BucketConsoleRevocations)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for k := range keys.Keys() {
		n++
		if strings.Contains(saved[0].Value, k) {
			t.Error("the bucket holds the cookie's contents")
		}
	}
	if n != 1 {
		t.Errorf("%d revocations in the bucket, want 1", n)
	}
	stream, err := js.Stream(context.Background(), "KV_"+topology.BucketConsoleRevocations)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), "$KV."+topology.BucketConsoleRevocations+".>")
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := time.ParseDuration(msg.Header.Get(jetstream.MsgTTLHeader))
	if err != nil || ttl > 8*time.Hour || ttl < 8*time.Hour-time.Minute {
		t.Errorf("the revocation's TTL is %q (%v), want the session's 8h less the seconds it lived", msg.Header.Get(jetstream.MsgTTLHeader), err)
	}
}

// TestRevocationExpiresWithItsSession: a revocation is kept only as long as its session could
// be presented.
func TestRevocationExpiresWithItsSession(t *testing.T) {
	_, js, err := bus.Connect(natstest.Start(t).ClientURL(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bus.EnsureBucket(context.Background(), js, topology.ConsoleRevocationsBucket(topology.Options{Replicas: 1, Storage: jetstream.MemoryStorage}))
	if err != nil {
		t.Fatal(err)
	}
	r := &revocations{kv: kv, timeout: 2 * time.Second}
	ctx, now := context.Background(), time.Now()
	if err := r.revoke(ctx, "short", now.Add(1500*time.Millisecond), now); err != nil {
		t.Fatal(err)
	}
	if err := r.revoke(ctx, "long", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if err := r.revoke(ctx, "long", now.Add(time.Hour), now); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := r.revoke(ctx, "expired", now.Add(-time.Second), now); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"short": true, "long": true, "expired": false, "never": false} {
		if got, err := r.revoked(ctx, id); err != nil || got != want {
			t.Errorf("revoked(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	natstest.WaitFor(t, "the short session's revocation to expire", func() bool {
		got, err := r.revoked(ctx, "short")
		return err == nil && !got
	})
	if got, err := r.revoked(ctx, "long"); err != nil || !got {
		t.Errorf("the long session's revocation: %v, %v", got, err)
	}
}

// logLines counts the console's log lines that hold every one of parts.
func logLines(e *env, parts ...string) int {
	n := 0
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// TestSecondOfficer is what the officer who comes second sees, over HTTP: the case taken by
// another (the page says so and offers no form), a take refused as taken, and once the first
// has decided, a decision refused as already made.
func TestSecondOfficer(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL())
	ev := referral(t, time.Minute)
	publishReferral(t, e.js, ev)
	natstest.WaitFor(t, "the case", func() bool { _, ok := getCase(t, e.kv, ev.SearchID); return ok })
	page := "/cases/" + ev.SearchID
	first, second := newClient(t, e.url), newClient(t, e.url)
	first.SignIn("ivanova", testPassword)
	second.SignIn("petrov", testPassword)
	follow := func(c *consoletest.Client, resp *http.Response, want string) string {
		t.Helper()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || loc != page+want {
			t.Fatalf("answer %d to %q, want 303 to %q", resp.StatusCode, loc, page+want)
		}
		_, body := c.Do("GET", loc, nil)
		return body
	}

	if _, body := second.Do("GET", page, nil); !strings.Contains(body, `id="take"`) {
		t.Fatal("the open case offers the second officer no take")
	}
	follow(first, mustPost(t, first, page, page+"/take", nil), "?msg=taken")

	_, body := second.Do("GET", page, nil)
	if !strings.Contains(body, `<p id="taken-other">Заявку рассматривает другой сотрудник.</p>`) ||
		strings.Contains(body, `id="take"`) || strings.Contains(body, `id="decide-form"`) || !strings.Contains(body, "<b>ivanova</b>") {
		t.Errorf("the second officer's page of a taken case:\n%s", body)
	}
	_, body = second.Do("GET", page+"?lang=en", nil)
	if !strings.Contains(body, `<p id="taken-other">Another officer is reviewing this application.</p>`) {
		t.Errorf("in English:\n%s", body)
	}
	// The take form of a page loaded before the first officer took it.
	body = follow(second, mustPost(t, second, page, page+"/take", nil), "?err=taken")
	if !strings.Contains(body, `<p class="err" id="err">Another officer has already taken this application.</p>`) {
		t.Errorf("the second officer's refused take:\n%s", body)
	}
	body = follow(second, mustPost(t, second, page, page+"/decide", approveForm()), "?err=taken")
	if !strings.Contains(body, `id="err"`) {
		t.Errorf("the second officer's decision of a case taken by another:\n%s", body)
	}

	follow(first, mustPost(t, first, page, page+"/decide", approveForm()), "?msg=decided")
	for _, action := range []string{"/decide", "/take"} {
		form := approveForm()
		if action == "/take" {
			form = nil
		}
		body = follow(second, mustPost(t, second, page, page+action, form), "?err=decided")
		if !strings.Contains(body, `<p class="err" id="err">This application is already decided.</p>`) ||
			!strings.Contains(body, `id="decided-by">ivanova`) || strings.Contains(body, `id="decide-form"`) {
			t.Errorf("the second officer's %s after the decision:\n%s", action, body)
		}
	}
	_, body = second.Do("GET", page+"?err=decided&lang=ru", nil)
	if !strings.Contains(body, "По заявке уже принято решение.") {
		t.Errorf("already decided, in Russian:\n%s", body)
	}
	if c, _ := getCase(t, e.kv, ev.SearchID); c.Decision == nil || c.Decision.By != "ivanova" {
		t.Errorf("the case: %+v, want decided by ivanova", c.Decision)
	}
	if got := decidedEvents(t, e.js, ev.SearchID); len(got) != 1 || got[0].DecidedBy != "ivanova" {
		t.Errorf("decided events: %+v, want one, by ivanova", got)
	}
}

// mustPost posts form to path with the token of page (which the officer has open).
func mustPost(t *testing.T, c *consoletest.Client, page, path string, form url.Values) *http.Response {
	t.Helper()
	resp, _ := c.Post(page, path, form)
	return resp
}

func approveForm() url.Values {
	return url.Values{"verdict": {"approve"}, "approval": {"full_approved"}, "amount": {"1 000 000"}, "comment": {"Доход подтверждён"}}
}

func TestConfigRefusesTheYandexPort(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:8080", IngressAddr: "127.0.0.1:8080", PhoneKey: testPhoneKey, Users: accountsFor(t)}
	if err := cfg.withDefaults().validate(); err == nil || !strings.Contains(err.Error(), "Yandex") {
		t.Errorf("validate = %v, want a refusal of the Yandex port", err)
	}
	cfg.Addr = "127.0.0.1:8081"
	if err := cfg.withDefaults().validate(); err != nil {
		t.Errorf("validate = %v", err)
	}
}

func TestInsecureCookiesOnlyForPlainHTTPElsewhere(t *testing.T) {
	tests := []struct {
		name, addr, cert string
		wantErr          string
	}{
		{"every interface", "0.0.0.0:8090", "", ""},
		{"a LAN address", "10.0.0.5:8090", "", ""},
		{"no host", ":8090", "", ""},
		{"127.0.0.1", "127.0.0.1:8081", "", "loopback"},
		{"another loopback", "127.0.0.2:8081", "", "loopback"},
		{"::1", "[::1]:8081", "", "loopback"},
		{"localhost", "localhost:8081", "", "loopback"},
		{"with TLS", "0.0.0.0:8090", "cert.pem", "serves HTTPS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Addr: tt.addr, TLSCert: tt.cert, TLSKey: tt.cert, PhoneKey: testPhoneKey, Users: accountsFor(t), InsecureCookies: true}
			err := cfg.withDefaults().validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate = %v, want an error with %q", err, tt.wantErr)
			}
			cfg.InsecureCookies = false
			if err := cfg.withDefaults().validate(); err != nil {
				t.Errorf("without the opt-out, validate = %v", err)
			}
		})
	}
}

// TestInsecureCookies is the opt-out at work: a console on every interface, over plain HTTP,
// sets its session cookie without Secure (nor the __Host- prefix, which requires it) and says
// so in its log.
func TestInsecureCookies(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL(), func(c *Config) {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		c.Listener, c.InsecureCookies = ln, true
	})
	c := newClient(t, e.url)
	tok := c.Token("/signin")
	resp, _ := c.Do("POST", "/signin", url.Values{"csrf": {tok}, "login": {"ivanova"}, "password": {testPassword}})
	var found bool
	for _, ck := range resp.Cookies() {
		switch ck.Name {
		case "lf_session":
			found = true
			if ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure", ck)
			}
		case "__Host-lf_session":
			t.Errorf("a __Host- cookie without Secure: %+v", ck)
		}
	}
	if !found {
		t.Error("no lf_session cookie")
	}
	if resp, _ := c.Do("GET", "/queue", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("signed in, /queue answers %d", resp.StatusCode)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"level":"WARN","msg":"LOANFLOW_CONSOLE_INSECURE_COOKIES`) {
		t.Errorf("the opt-out is not warned about:\n%s", logs)
	}
}

func TestParseAccounts(t *testing.T) {
	good := accountsFor(t)
	tests := []struct {
		name    string
		entries []string
		wantN   int
		wantErr bool
	}{
		{"good", good, 3, false},
		{"comments and blanks", append([]string{"# officers", ""}, good[0]), 1, false},
		{"bad role", []string{strings.Replace(good[0], ":officer:", ":admin:", 1)}, 0, true},
		{"not a hash", []string{"ivanova:officer:secret"}, 0, true},
		{"twice", []string{good[0], good[0]}, 1, true},
		{"bad login", []string{strings.Replace(good[0], "ivanova", "iva nova", 1)}, 0, true},
		{"missing parts", []string{"ivanova:officer"}, 0, true},
		{"the fallback's name", []string{strings.Replace(good[0], "ivanova", "policy-fallback", 1)}, 0, true},
		{"the fallback's name as an auditor", []string{strings.Replace(good[2], "auditor:", "Policy-Fallback:", 1)}, 0, true},
		{"the fallback's name among good ones", append([]string{strings.Replace(good[0], "ivanova", "policy-fallback", 1)}, good[1:]...), 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAccounts(tt.entries)
			if (err != nil) != tt.wantErr || len(got) != tt.wantN {
				t.Errorf("parseAccounts = %d accounts, %v; want %d, error %v", len(got), err, tt.wantN, tt.wantErr)
			}
		})
	}
}

// auditRecordJSON is what the audit service appends for one event (services/audit/internal/chain
// Record): the event's type and search_id, and its body as the payload.
func auditRecordJSON(seq uint64, eventType, searchID string, payload any) []byte {
	p, _ := json.Marshal(payload)
	rec := map[string]any{
		"seq": seq, "time": time.Now().UTC(), "event_type": eventType, "search_id": searchID, "stage": "ingress",
		"correlation_id": "corr", "source_seq": seq, "payload": json.RawMessage(p),
		"prev_hash": strings.Repeat("0", 64), "hash": strings.Repeat("ab", 32),
	}
	b, _ := json.Marshal(rec)
	return b
}

// appendAudit writes what the audit service would append for one event.
func appendAudit(t *testing.T, nc *nats.Conn, seq uint64, eventType, searchID string, payload any) {
	t.Helper()
	if err := nc.Publish(topology.AuditSubject(searchID), auditRecordJSON(seq, eventType, searchID, payload)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestSearchTimelineAndDashboard(t *testing.T) {
	srv := natstest.Start(t)
	e := startConsole(t, srv.ClientURL())
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ev := referral(t, time.Minute)
	other := referral(t, time.Minute)
	other.SearchID = "ffffffff-0000-4000-8000-000000000001"
	other.PhoneHash, other.PhoneMask = strings.Repeat("cd", 32), "90******67"
	appendAudit(t, nc, 1, events.TypeApplicationReceived, ev.SearchID, map[string]any{
		"search_id": ev.SearchID, "product_type": "loan", "phone_hash": ev.PhoneHash, "phone_mask": ev.PhoneMask, "amount": 2500000.00, "term": 60,
	})
	appendAudit(t, nc, 2, events.TypeApplicationReceived, other.SearchID, map[string]any{
		"search_id": other.SearchID, "product_type": "credit_card", "phone_hash": other.PhoneHash, "phone_mask": other.PhoneMask,
	})
	appendAudit(t, nc, 3, events.TypeApplicationReferred, ev.SearchID, ev)
	// The referral the queue reads, on LOANS.
	publishReferral(t, e.js, ev)
	c := newClient(t, e.url)
	c.SignIn("ivanova", testPassword)

	t.Run("search by phone", func(t *testing.T) {
		for _, q := range []string{"9330445040", "+7 (933) 044-50-40", "89330445040"} {
			resp, body := c.Post("/search", "/search", url.Values{"q": {q}})
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, ev.SearchID) || strings.Contains(body, other.SearchID) {
				t.Errorf("search %q: %d; want only %s", q, resp.StatusCode, ev.SearchID)
			}
			if strings.Contains(body, "9330445040") || strings.Contains(body, "044-50-40") {
				t.Errorf("search %q: the page shows the phone", q)
			}
		}
		_, body := c.Post("/search", "/search", url.Values{"q": {"9000000000"}})
		if !strings.Contains(body, `id="no-hits"`) {
			t.Error("an unknown phone finds something")
		}
	})

	t.Run("search by search_id", func(t *testing.T) {
		resp, _ := c.Post("/search", "/search", url.Values{"q": {ev.SearchID}})
		if got, want := resp.Header.Get("Location"), "/applications/"+ev.SearchID; got != want {
			t.Errorf("search by id: to %q, want %q", got, want)
		}
	})

	t.Run("timeline", func(t *testing.T) {
		natstest.WaitFor(t, "the case", func() bool { _, ok := getCase(t, e.kv, ev.SearchID); return ok })
		resp, body := c.Do("GET", "/applications/"+ev.SearchID, nil)
		if resp.StatusCode != http.StatusOK || strings.Count(body, `class="event"`) != 2 ||
			!strings.Contains(body, "заявка получена") || !strings.Contains(body, "REFER_LARGE_AMOUNT") || !strings.Contains(body, `id="case-link"`) {
			t.Errorf("timeline: %d\n%s", resp.StatusCode, body)
		}
		// Fields by name in the page's language, amounts in roubles, codes translated.
		for _, want := range []string{"<b>сумма</b> 2\u00a0500\u00a0000,00\u00a0₽", "<b>продукт</b> кредит наличными", "<b>срок</b> 60 мес.",
			"<b>предложение политики</b> одобрено, полное одобрение", "<b>коды причин</b>", "<td>приём</td>"} {
			if !strings.Contains(body, want) {
				t.Errorf("timeline: no %q", want)
			}
		}
		for _, raw := range []string{"<b>amount</b>", "<b>product_type</b>", "max_amount=", ">ingress<"} {
			if strings.Contains(body, raw) {
				t.Errorf("timeline shows %q raw", raw)
			}
		}
		_, body = c.Do("GET", "/applications/"+ev.SearchID+"?lang=en", nil)
		if !strings.Contains(body, "<b>amount</b> 2\u00a0500\u00a0000.00\u00a0₽") || !strings.Contains(body, "<b>policy&#39;s proposal</b> approved, full approval") {
			t.Errorf("English timeline:\n%s", body)
		}
		c.Do("GET", "/queue?lang=ru", nil)
		if resp, _ := c.Do("GET", "/applications/00000000-0000-4000-8000-00000000dead", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("timeline of nothing: %d, want 404", resp.StatusCode)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		received := events.ApplicationReceived{SearchID: ev.SearchID, ProductType: "loan", PhoneHash: ev.PhoneHash, PhoneMask: ev.PhoneMask, ReceivedAt: time.Now().UTC()}
		audited(t, e, events.TypeApplicationReceived, ev.SearchID, received)
		audited(t, e, events.TypeDecisionMade, ev.SearchID, events.DecisionMade{SearchID: ev.SearchID, ProductType: "loan", Decision: "has_approve", DecidedAt: received.ReceivedAt.Add(100 * time.Millisecond)})
		natstest.WaitFor(t, "the dashboard to count it", func() bool {
			_, body := c.Do("GET", "/dashboard", nil)
			return strings.Contains(body, `id="dash-received">1<`) && strings.Contains(body, `id="dash-sync">100.0%<`)
		})
		_, body := c.Do("GET", "/dashboard?fragment=1", nil)
		if !strings.Contains(body, ">макс. ") || strings.Contains(body, ">max ") {
			t.Error("the charts' maximum is not captioned in Russian")
		}
		if !strings.Contains(body, "<svg") || strings.Contains(body, "<html") {
			t.Error("the dashboard fragment is not the charts alone")
		}
	})
}

// audited stores one event as the audit would have recorded it, acknowledged by the AUDIT
// stream: the dashboard reads the audit, not LOANS.
func audited(t *testing.T, e *env, eventType, searchID string, payload any) {
	t.Helper()
	if _, err := e.js.Publish(context.Background(), topology.AuditSubject(searchID), auditRecordJSON(0, eventType, searchID, payload)); err != nil {
		t.Fatal(err)
	}
}

// TestCasePageShowsTheAnswers: the case page shows, as a table in the page's language, what
// Yandex would be told on the policy's proposal and on the fallback.
func TestCasePageShowsTheAnswers(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL())
	ev := referral(t, time.Minute)
	publishReferral(t, e.js, ev)
	natstest.WaitFor(t, "the case", func() bool { _, ok := getCase(t, e.kv, ev.SearchID); return ok })
	c := newClient(t, e.url)
	c.SignIn("ivanova", testPassword)
	nb := "\u00a0"
	row := func(body, label string) string {
		t.Helper()
		start := strings.Index(body, `<tr data-answer="`+label+`">`)
		if start < 0 {
			t.Fatalf("no answer row %s:\n%s", label, body)
		}
		end := strings.Index(body[start:], "</tr>")
		return body[start : start+end]
	}
	for _, tt := range []struct {
		lang                string
		suggested, fallback []string
		notInPage           []string
	}{
		{"ru",
			[]string{"Предложение политики", "кредит наличными", "одобрено, полное одобрение", "30" + nb + "000,00" + nb + "₽ … 2" + nb + "500" + nb + "000,00" + nb + "₽", "60 мес."},
			[]string{"Если никто не решит", "одобрено, предварительное одобрение", "30" + nb + "000,00" + nb + "₽ … 300" + nb + "000,00" + nb + "₽"},
			[]string{"has_approve", "full_approved:", ">loan<"}},
		{"en",
			[]string{"Policy&#39;s proposal", "cash loan", "approved, full approval", "30" + nb + "000.00" + nb + "₽ … 2" + nb + "500" + nb + "000.00" + nb + "₽", "60 months"},
			[]string{"If nobody decides", "approved, pre-approval", "300" + nb + "000.00"},
			[]string{"has_approve", ">loan<"}},
	} {
		resp, body := c.Do("GET", "/cases/"+ev.SearchID+"?lang="+tt.lang, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="would-offer"`) {
			t.Fatalf("%s case page: %d\n%s", tt.lang, resp.StatusCode, body)
		}
		for label, want := range map[string][]string{"case.suggested": tt.suggested, "case.fallback": tt.fallback} {
			r := row(body, label)
			for _, w := range want {
				if !strings.Contains(r, w) {
					t.Errorf("%s row %s: no %q in\n%s", tt.lang, label, w, r)
				}
			}
		}
		for _, raw := range tt.notInPage {
			if strings.Contains(body, raw) {
				t.Errorf("%s case page shows %q raw", tt.lang, raw)
			}
		}
	}
	if _, body := c.Do("GET", "/cases/"+ev.SearchID+"?lang=ru", nil); strings.Contains(body, "Платёж в месяц, до") {
		t.Error("a payment column although no proposal bounds the payment")
	}
	// A proposal that bounds the monthly payment shows it.
	withPayment := referral(t, time.Minute)
	withPayment.SearchID = "ffffffff-0000-4000-8000-0000000000aa"
	withPayment.Suggested.MaxPayment = 55_000_00
	publishReferral(t, e.js, withPayment)
	natstest.WaitFor(t, "the second case", func() bool { _, ok := getCase(t, e.kv, withPayment.SearchID); return ok })
	_, body := c.Do("GET", "/cases/"+withPayment.SearchID+"?lang=ru", nil)
	if !strings.Contains(body, "Платёж в месяц, до") || !strings.Contains(row(body, "case.suggested"), "55"+nb+"000,00"+nb+"₽") || !strings.Contains(row(body, "case.fallback"), "—") {
		t.Errorf("the payment column:\n%s", body)
	}
}

func TestPreview(t *testing.T) {
	term := 24
	c := underwriting.Case{ProductType: partnerapi.ProductLoan, Term: &term, MinAmount: 30_000_00, MaxAmount: 3_000_000_00}
	tests := []struct {
		name string
		p    events.Proposal
		want answerPreview
	}{
		{"approved", events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, MaxAmount: 1_000_000_00, MaxPayment: 40_000_00},
			answerPreview{Label: "l", Product: partnerapi.ProductLoan, Decision: partnerapi.DecisionHasApprove, Approval: partnerapi.OfferFullApproved,
				MinAmount: 30_000_00, MaxAmount: 1_000_000_00, Term: &term, MaxPayment: 40_000_00}},
		{"approved below the lower bound", events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, MaxAmount: 10_000_00},
			answerPreview{Label: "l", Product: partnerapi.ProductLoan, Decision: partnerapi.DecisionHasApprove, Approval: partnerapi.OfferPreApproved,
				MinAmount: 10_000_00, MaxAmount: 10_000_00, Term: &term}},
		{"rejected", events.Proposal{Outcome: events.OutcomeRejected},
			answerPreview{Label: "l", Product: partnerapi.ProductLoan, Decision: partnerapi.DecisionRejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := preview("l", c, tt.p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("preview = %+v, want %+v", got, tt.want)
			}
		})
	}
}
