package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/console/internal/stats"
	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type serverDeps struct {
	store      *store
	pub        *bus.Publisher
	view       *view
	feed       *feed
	audit      *auditReader
	hasher     *pseudonym.Hasher
	sessions   *sessions
	log        *slog.Logger
	now        func() time.Time
	syncBudget time.Duration
}

// server is the console's HTTP side.
type server struct {
	serverDeps
	pages   map[string]*template.Template
	handler http.Handler
}

var pageNames = []string{"signin", "queue", "case", "search", "timeline", "dashboard", "error"}

func newServer(d serverDeps) (*server, error) {
	s := &server{serverDeps: d, pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console templates: %w", err)
		}
		s.pages[name] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /signin", s.signinPage)
	mux.HandleFunc("POST /signin", s.signin)
	mux.HandleFunc("POST /signout", s.authed(s.signout))
	mux.HandleFunc("GET /{$}", s.authed(func(w http.ResponseWriter, r *http.Request, _ *request) {
		http.Redirect(w, r, "/queue", http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /queue", s.authed(s.queuePage))
	mux.HandleFunc("GET /cases/{id}", s.authed(s.casePage))
	mux.HandleFunc("POST /cases/{id}/take", s.officer(s.take))
	mux.HandleFunc("POST /cases/{id}/decide", s.officer(s.decide))
	mux.HandleFunc("GET /search", s.authed(s.searchPage))
	mux.HandleFunc("POST /search", s.authed(s.search))
	mux.HandleFunc("GET /applications/{id}", s.authed(s.timelinePage))
	mux.HandleFunc("GET /dashboard", s.authed(s.dashboardPage))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &request{lang: language(w, r)}, http.StatusNotFound, "err.not_found")
	})

	// Cross-origin form posts are refused before anything else (Sec-Fetch-Site / Origin);
	// the per-session token guards what a same-site attacker could still send.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.logFor(r).Warn("forged form refused", "why", "cross-origin request", "path", r.URL.Path, "remote", remote(r))
		s.fail(w, r, &request{lang: language(w, r)}, http.StatusForbidden, "err.forged")
	}))
	s.handler = identify(securityHeaders(cop.Handler(mux)))
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// requestIDPattern is what a caller's X-Request-Id may be to be kept (a proxy's, say).
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

type ctxKey int

const keyRequestID ctxKey = iota

// identify gives every request an id, the caller's X-Request-Id when usable, echoed in the
// answer and logged as request_id with everything the request logs, so an officer's report
// of an error page finds its log lines.
func identify(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = randomToken()
		}
		w.Header().Set("X-Request-Id", id)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
	})
}

// logFor is the console's logger with the request's id.
func (s *server) logFor(r *http.Request) *slog.Logger {
	id, _ := r.Context().Value(keyRequestID).(string)
	return s.log.With("request_id", id)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// request is what a handler knows of the signed-in officer.
type request struct {
	sess session
	acc  account
	lang string
}

type handlerFunc func(http.ResponseWriter, *http.Request, *request)

// authed requires a valid session: without one, the sign-in page (a redirect that comes back
// here after). A POST must also carry the session's anti-forgery token.
func (s *server) authed(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lang := language(w, r)
		sess, acc, err := s.sessions.current(r, s.now())
		if err != nil && !errors.Is(err, errNoSession) {
			s.logFor(r).Error("session check", "path", r.URL.Path, "err", err)
			s.fail(w, r, &request{lang: lang}, http.StatusServiceUnavailable, "err.internal")
			return
		}
		if err != nil {
			next := "/queue"
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		req := &request{sess: sess, acc: acc, lang: lang}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
			if !s.sessions.validCSRF(sess, r.PostFormValue("csrf")) {
				s.logFor(r).Warn("forged form refused", "why", "anti-forgery token missing or wrong", "path", r.URL.Path,
					"login", acc.Login, "remote", remote(r))
				s.fail(w, r, req, http.StatusForbidden, "err.forged")
				return
			}
		}
		h(w, r, req)
	}
}

// officer is authed for the actions only officers may take: an auditor gets 403.
func (s *server) officer(h handlerFunc) http.HandlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request, req *request) {
		if req.acc.Role != RoleOfficer {
			s.logFor(r).Warn("action refused: read-only role", "path", r.URL.Path, "login", req.acc.Login, "role", req.acc.Role)
			s.fail(w, r, req, http.StatusForbidden, "err.forbidden")
			return
		}
		h(w, r, req)
	})
}

// page is the data every template gets.
type page struct {
	Lang   string
	Langs  []string
	Title  string
	Path   string
	Query  url.Values
	User   *account
	CSRF   string
	Now    time.Time
	Msg    string
	Err    string
	Data   any
	server *server
}

// T translates a message key.
func (p *page) T(key string) string { return translate(p.Lang, key) }

// Tf translates prefix+value, falling back to the value itself.
func (p *page) Tf(prefix string, value any) string {
	v := fmt.Sprint(value)
	if m := translate(p.Lang, prefix+v); m != prefix+v {
		return m
	}
	return v
}

// LangHref is this page's address in another language: the path and query as they are (a
// sign-in's next, a search's filters), lang set, the live refresh's fragment left out.
func (p *page) LangHref(lang string) string {
	q := url.Values{}
	for k, v := range p.Query {
		q[k] = append([]string(nil), v...)
	}
	q.Set("lang", lang)
	q.Del("fragment")
	return p.Path + "?" + q.Encode()
}

// Officer reports whether the signed-in user may take and decide cases.
func (p *page) Officer() bool { return p.User != nil && p.User.Role == RoleOfficer }

// Money formats an amount in roubles, grouped by thousands.
func (p *page) Money(m any) string {
	var v partnerapi.Money
	switch x := m.(type) {
	case partnerapi.Money:
		v = x
	case *partnerapi.Money:
		if x == nil {
			return "—"
		}
		v = *x
	default:
		return "—"
	}
	s := v.String()
	whole, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	whole = strings.TrimPrefix(whole, "-")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteRune('\u00a0')
		}
		b.WriteRune(c)
	}
	sep := "."
	if p.Lang == "ru" {
		sep = ","
	}
	out := b.String() + sep + frac + "\u00a0₽"
	if neg {
		out = "-" + out
	}
	return out
}

// Time formats a moment in UTC.
func (p *page) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// Clock formats a moment's time of day in UTC.
func (p *page) Clock(t time.Time) string { return t.UTC().Format("15:04:05") }

// RFC3339 is the machine form of a moment, for the countdown script.
func (p *page) RFC3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Left formats the time until t as m:ss, or the expired message.
func (p *page) Left(t time.Time) string {
	d := t.Sub(p.Now)
	if d <= 0 {
		return p.T("queue.expired")
	}
	sec := int((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

// Dur formats a duration for people: ms below a second, s with one decimal above.
func (p *page) Dur(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
	return d.Round(time.Second).String()
}

// By names who decided: the officer's login, or the policy's fallback.
func (p *page) By(who string) string {
	if who == events.DecidedByFallback {
		return p.T("case.fallback_name")
	}
	return who
}

// Percent formats a share.
func (p *page) Percent(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

// Short cuts a hash for display.
func (p *page) Short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func (s *server) render(w http.ResponseWriter, r *http.Request, req *request, status int, name, title string, data any, fragment string) {
	p := &page{Lang: req.lang, Langs: languages, Title: title, Path: r.URL.Path, Query: r.URL.Query(), Now: s.now(), Data: data, server: s}
	if req.acc.Login != "" {
		acc := req.acc
		p.User, p.CSRF = &acc, s.sessions.csrfToken(req.sess)
	}
	if m := r.URL.Query().Get("msg"); hasMessage("msg." + m) {
		p.Msg = "msg." + m
	}
	if e := r.URL.Query().Get("err"); hasMessage("err." + e) {
		p.Err = "err." + e
	}
	if e, ok := data.(errorData); ok {
		p.Err = e.Key
	}
	tmpl := "page"
	if fragment != "" {
		tmpl = fragment
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, tmpl, p); err != nil {
		s.logFor(r).Error("render page", "page", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct{ Key string }

func (s *server) fail(w http.ResponseWriter, r *http.Request, req *request, status int, key string) {
	s.render(w, r, req, status, "error", "app.name", errorData{Key: key}, "")
}

// --- sign-in ---

type signinData struct {
	Token, Next, Login, Failed string
}

func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/signin") {
		return "/queue"
	}
	return next
}

func (s *server) signinPage(w http.ResponseWriter, r *http.Request) {
	req := &request{lang: language(w, r)}
	if _, _, err := s.sessions.current(r, s.now()); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, r, req, http.StatusOK, "signin", "signin.title",
		signinData{Token: s.sessions.signinToken(w, r), Next: safeNext(r.URL.Query().Get("next"))}, "")
}

func (s *server) signin(w http.ResponseWriter, r *http.Request) {
	req := &request{lang: language(w, r)}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	login, next := strings.TrimSpace(r.PostFormValue("login")), safeNext(r.PostFormValue("next"))
	if !validSigninToken(r, r.PostFormValue("csrf")) {
		s.logFor(r).Warn("forged form refused", "why", "sign-in token missing or wrong", "path", r.URL.Path, "remote", remote(r))
		s.render(w, r, req, http.StatusForbidden, "signin", "signin.title",
			signinData{Token: s.sessions.signinToken(w, r), Next: next, Failed: "signin.expired"}, "")
		return
	}
	acc, ok := s.sessions.users.authenticate(login, r.PostFormValue("password"))
	if !ok {
		// The login is logged only when it is an account's: what else is typed there might be
		// anything, a phone number included.
		attrs := []any{"remote", remote(r)}
		if _, known := s.sessions.users[login]; known {
			attrs = append(attrs, "login", login)
		} else {
			attrs = append(attrs, "login_known", false)
		}
		s.logFor(r).Warn("sign-in refused: wrong login or password", attrs...)
		s.render(w, r, req, http.StatusUnauthorized, "signin", "signin.title",
			signinData{Token: s.sessions.signinToken(w, r), Next: next, Failed: "signin.failed"}, "")
		return
	}
	s.sessions.issue(w, acc, s.now())
	s.logFor(r).Info("signed in", "login", acc.Login, "role", acc.Role, "remote", remote(r))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) signout(w http.ResponseWriter, r *http.Request, req *request) {
	if err := s.sessions.end(r.Context(), w, req.sess, s.now()); err != nil {
		s.logFor(r).Error("sign-out not recorded: the session stays valid", "login", req.acc.Login, "err", err)
		s.fail(w, r, req, http.StatusServiceUnavailable, "err.signout")
		return
	}
	s.logFor(r).Info("signed out", "login", req.acc.Login)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// --- queue and cases ---

type queueData struct {
	Pending, Decided []underwriting.Case
	Synced           bool
}

func (s *server) queuePage(w http.ResponseWriter, r *http.Request, req *request) {
	pending, decided := s.view.list(s.now())
	frag := ""
	if r.URL.Query().Get("fragment") == "1" {
		frag = "body"
	}
	s.render(w, r, req, http.StatusOK, "queue", "queue.title", queueData{Pending: pending, Decided: decided, Synced: s.view.ready()}, frag)
}

type caseData struct {
	C             underwriting.Case
	Mine, CanTake bool
	DTI           string
	Amount        string
	Approval      string
	// Answers are what Yandex would be told on the policy's proposal and on the fallback.
	Answers []answerPreview
	// HasPayment is whether any answer bounds the monthly payment (a column only then).
	HasPayment bool
}

// answerPreview is the answer a proposal of the referral would make, as far as the referral
// tells: the decision and its type, the amount range, the term asked for, the largest monthly
// payment. Products, rates and payments of the catalog are offer assembly's, which the console
// does not run: no rate is shown, none is computed here.
type answerPreview struct {
	// Label names the proposal (a message key).
	Label    string
	Product  partnerapi.ProductType
	Decision partnerapi.Decision
	Approval partnerapi.OfferDecision
	// MinAmount and MaxAmount are the range of the loan amount or card limit.
	MinAmount, MaxAmount partnerapi.Money
	// Term is the term asked for, in months; nil when none was (a card).
	Term       *int
	MaxPayment partnerapi.Money
}

// preview is the answer of a proposal: has_approve from the referral's lower bound up to the
// proposal's maximum, or rejected.
func preview(label string, c underwriting.Case, p events.Proposal) answerPreview {
	a := answerPreview{Label: label, Product: c.ProductType, Decision: partnerapi.DecisionRejected}
	if p.Outcome == events.OutcomeApproved {
		a.Decision, a.Approval = partnerapi.DecisionHasApprove, p.Approval
		a.MinAmount, a.MaxAmount = min(c.MinAmount, p.MaxAmount), p.MaxAmount
		a.Term, a.MaxPayment = c.Term, p.MaxPayment
	}
	return a
}

func (s *server) casePage(w http.ResponseWriter, r *http.Request, req *request) {
	c, _, err := s.store.get(r.Context(), r.PathValue("id"))
	if errors.Is(err, errNoCase) {
		s.fail(w, r, req, http.StatusNotFound, "err.not_found")
		return
	}
	if err != nil {
		s.logFor(r).Error("read case", "search_id", r.PathValue("id"), "err", err)
		s.fail(w, r, req, http.StatusInternalServerError, "err.internal")
		return
	}
	d := caseData{C: c, Mine: c.State == underwriting.StateTaken && c.TakenBy == req.acc.Login,
		CanTake: c.State == underwriting.StateOpen && s.now().Before(c.DecideBy)}
	if c.Client != nil && c.Client.MonthlyIncome > 0 {
		d.DTI = strconv.FormatFloat(100*float64(c.Client.MonthlyDebtPayments)/float64(c.Client.MonthlyIncome), 'f', 1, 64) + "%"
	}
	amount := c.Suggested.MaxAmount
	amount = min(max(amount, c.MinAmount), c.MaxAmount)
	d.Amount = amount.String()
	d.Answers = []answerPreview{preview("case.suggested", c, c.Suggested), preview("case.fallback", c, c.Fallback)}
	for _, a := range d.Answers {
		d.HasPayment = d.HasPayment || a.MaxPayment > 0
	}
	d.Approval = string(c.Suggested.Approval)
	if d.Approval == "" {
		d.Approval = string(partnerapi.OfferPreApproved)
	}
	s.render(w, r, req, http.StatusOK, "case", "case.title", d, "")
}

// actionError maps a transition's error to its message key; "" for an unexpected error.
func actionError(err error) string {
	for _, m := range []struct {
		err error
		key string
	}{
		{underwriting.ErrTaken, "taken"}, {underwriting.ErrDecided, "decided"},
		{underwriting.ErrNotTaken, "not_taken"}, {underwriting.ErrExpired, "expired"},
		{underwriting.ErrBadApproval, "approval"}, {underwriting.ErrBadAmount, "amount"},
		{underwriting.ErrNoComment, "comment_required"}, {underwriting.ErrLongComment, "comment_long"},
		{underwriting.ErrPersonalComment, "comment_personal"},
	} {
		if errors.Is(err, m.err) {
			return m.key
		}
	}
	return ""
}

// after redirects back to the case page with the outcome of an action, or fails the request
// for a case that does not exist or an unexpected error.
func (s *server) after(w http.ResponseWriter, r *http.Request, req *request, id string, err error, okMsg string) {
	target := "/cases/" + url.PathEscape(id)
	switch key := actionError(err); {
	case err == nil:
		http.Redirect(w, r, target+"?msg="+okMsg, http.StatusSeeOther)
	case errors.Is(err, errNoCase):
		s.fail(w, r, req, http.StatusNotFound, "err.not_found")
	case key != "":
		http.Redirect(w, r, target+"?err="+key, http.StatusSeeOther)
	default:
		s.logFor(r).Error("underwriting action", "path", r.URL.Path, "search_id", id, "login", req.acc.Login, "err", err)
		s.fail(w, r, req, http.StatusInternalServerError, "err.internal")
	}
}

func (s *server) take(w http.ResponseWriter, r *http.Request, req *request) {
	id := r.PathValue("id")
	c, err := s.store.update(r.Context(), id, func(c underwriting.Case) (underwriting.Case, error) {
		return c.Take(req.acc.Login, s.now())
	})
	if err != nil {
		s.after(w, r, req, id, err, "")
		return
	}
	s.logFor(r).Info("underwriting case taken", "search_id", id, "correlation_id", c.CorrelationID, "login", req.acc.Login)
	msg := "taken"
	if err := announceTake(r.Context(), s.store, s.pub, c); err != nil {
		// The take stands; the event is owed and goes out with the next take or the decision.
		s.logFor(r).Warn("underwriting take not announced yet", "search_id", id, "correlation_id", c.CorrelationID, "login", req.acc.Login, "err", err)
		msg = "taken_pending"
	}
	s.after(w, r, req, id, nil, msg)
}

func (s *server) decide(w http.ResponseWriter, r *http.Request, req *request) {
	id := r.PathValue("id")
	v := underwriting.Verdict{
		Approve:  r.PostFormValue("verdict") == "approve",
		Approval: partnerapi.OfferDecision(r.PostFormValue("approval")),
		Comment:  r.PostFormValue("comment"),
	}
	if v.Approve {
		amount, err := parseAmount(r.PostFormValue("amount"))
		if err != nil {
			s.after(w, r, req, id, underwriting.ErrBadAmount, "")
			return
		}
		v.Amount = amount
	} else if r.PostFormValue("verdict") != "reject" {
		s.after(w, r, req, id, underwriting.ErrBadApproval, "")
		return
	}
	c, err := s.store.update(r.Context(), id, func(c underwriting.Case) (underwriting.Case, error) {
		return c.Decide(req.acc.Login, v, s.now())
	})
	if err != nil {
		s.after(w, r, req, id, err, "")
		return
	}
	s.logFor(r).Info("underwriting case decided", "search_id", id, "correlation_id", c.CorrelationID, "login", req.acc.Login,
		"outcome", c.Decision.Proposal.Outcome, "approval", c.Decision.Proposal.Approval, "max_amount", c.Decision.Proposal.MaxAmount.String())
	msg := "decided"
	if err := announce(r.Context(), s.store, s.pub, c); err != nil {
		// The decision stands in the bucket; the referral's redelivery announces it.
		s.logFor(r).Warn("underwriting decision not announced yet", "search_id", id, "correlation_id", c.CorrelationID, "err", err)
		msg = "decided_pending"
	}
	s.after(w, r, req, id, nil, msg)
}

// parseAmount reads roubles as people type them: spaces between thousands, a comma or a dot
// before kopecks, a ₽ sign.
func parseAmount(s string) (partnerapi.Money, error) {
	s = strings.NewReplacer(" ", "", "\u00a0", "", "\u202f", "", "₽", "", ",", ".").Replace(strings.TrimSpace(s))
	if s == "" {
		return 0, errors.New("no amount")
	}
	return partnerapi.ParseMoney(s)
}

// --- search and timeline ---

type searchData struct {
	Query    string
	Searched bool
	Hits     []phoneHit
	Bad      bool
}

func (s *server) searchPage(w http.ResponseWriter, r *http.Request, req *request) {
	s.render(w, r, req, http.StatusOK, "search", "search.title", searchData{}, "")
}

// search finds by search_id (straight to its timeline) or by phone. The phone comes in a
// POST body, so that it is in no URL, history or access log; it is hashed at once and only
// its mask is shown back.
func (s *server) search(w http.ResponseWriter, r *http.Request, req *request) {
	q := strings.TrimSpace(r.PostFormValue("q"))
	if phone, ok := normalisePhone(q); ok {
		hits, err := s.audit.byPhone(r.Context(), s.hasher.Phone(phone), s.now())
		if err != nil {
			s.logFor(r).Error("search by phone", "err", err)
			s.fail(w, r, req, http.StatusInternalServerError, "err.internal")
			return
		}
		s.render(w, r, req, http.StatusOK, "search", "search.title", searchData{Query: pseudonym.Mask(phone), Searched: true, Hits: hits}, "")
		return
	}
	if validSearchID(q) {
		http.Redirect(w, r, "/applications/"+url.PathEscape(q), http.StatusSeeOther)
		return
	}
	s.render(w, r, req, http.StatusBadRequest, "search", "search.title", searchData{Bad: true}, "")
}

// normalisePhone returns the 10 digits of a Russian phone number typed with or without +7 or 8
// and with spaces, dashes or brackets.
func normalisePhone(q string) (string, bool) {
	var b strings.Builder
	for i, c := range q {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')':
		default:
			return "", false
		}
	}
	d := b.String()
	switch {
	case len(d) == 10:
		return d, true
	case len(d) == 11 && (d[0] == '7' || d[0] == '8'):
		return d[1:], true
	}
	return "", false
}

// validSearchID accepts what can be a NATS subject token and a KV key: Yandex's search_ids are
// UUIDs.
func validSearchID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type timelineRow struct {
	auditRecord
	Details []detail
}

type detail struct{ Key, Value string }

type timelineData struct {
	SearchID string
	Rows     []timelineRow
	HasCase  bool
}

func (s *server) timelinePage(w http.ResponseWriter, r *http.Request, req *request) {
	id := r.PathValue("id")
	if !validSearchID(id) {
		s.fail(w, r, req, http.StatusNotFound, "err.not_found")
		return
	}
	recs, err := s.audit.timeline(r.Context(), id)
	if err != nil {
		s.logFor(r).Error("timeline", "search_id", id, "err", err)
		s.fail(w, r, req, http.StatusInternalServerError, "err.internal")
		return
	}
	d := timelineData{SearchID: id}
	fp := &page{Lang: req.lang}
	for _, rec := range recs {
		d.Rows = append(d.Rows, timelineRow{auditRecord: rec, Details: details(rec.Payload, fp)})
	}
	if _, _, err := s.store.get(r.Context(), id); err == nil {
		d.HasCase = true
	}
	status := http.StatusOK
	if len(d.Rows) == 0 && !d.HasCase {
		status = http.StatusNotFound
	}
	s.render(w, r, req, status, "timeline", "timeline.title", d, "")
}

// detailKeys are the payload fields a timeline row shows, in this order. The phone hash is
// left out: it means nothing to a person.
var detailKeys = []string{
	"product_type", "amount", "term", "phone_mask", "outcome", "approval", "grade", "max_amount", "max_payment",
	"min_amount", "decision", "taken_by", "decided_by", "comment", "suggested", "fallback", "stage", "reason", "detail",
	"reason_codes", "policy_version", "catalog_version", "offer_id", "channel", "decide_by",
}

// moneyFields are the payload fields that hold roubles.
var moneyFields = map[string]bool{"amount": true, "max_amount": true, "min_amount": true, "max_payment": true}

// details turns the interesting fields of a payload into labelled values, formatted for
// people in the page's language: amounts in roubles, codes of products, outcomes and
// decisions translated, proposals spelt out, moments as times.
func details(payload json.RawMessage, p *page) []detail {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return nil
	}
	var out []detail
	for _, k := range detailKeys {
		raw, ok := m[k]
		if !ok || string(raw) == "null" {
			continue
		}
		out = append(out, detail{Key: k, Value: detailValue(k, raw, p)})
	}
	if offers, ok := m["offers"]; ok {
		var list []json.RawMessage
		if json.Unmarshal(offers, &list) == nil && len(list) > 0 {
			out = append(out, detail{Key: "offers", Value: strconv.Itoa(len(list))})
		}
	}
	return out
}

// detailValue formats one payload field; what it does not know is shown flat.
func detailValue(key string, raw json.RawMessage, p *page) string {
	var str string
	isString := json.Unmarshal(raw, &str) == nil
	switch {
	case moneyFields[key]:
		var v partnerapi.Money
		if json.Unmarshal(raw, &v) == nil {
			return p.Money(v)
		}
	case key == "product_type" && isString:
		return p.Tf("product.", str)
	case key == "outcome" && isString:
		return p.Tf("outcome.", str)
	case key == "approval" && isString:
		return p.Tf("approval.", str)
	case key == "decision" && isString: // decision.made: the answer's decision code
		return p.Tf("decision.", str)
	case key == "decision", key == "suggested", key == "fallback": // a proposal
		var pr events.Proposal
		if json.Unmarshal(raw, &pr) == nil && pr.Outcome != "" {
			return p.Proposal(pr)
		}
	case key == "term":
		var n int
		if json.Unmarshal(raw, &n) == nil {
			return strconv.Itoa(n) + " " + p.T("unit.months")
		}
	case key == "decide_by" && isString:
		if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
			return p.Time(t)
		}
	case key == "decided_by" && isString:
		return p.By(str)
	}
	return flat(raw)
}

// Proposal spells out a policy's or an officer's proposal: outcome, approval, grade, limits.
func (p *page) Proposal(pr events.Proposal) string {
	s := p.Tf("outcome.", pr.Outcome)
	if pr.Approval != "" {
		s += ", " + p.Tf("approval.", pr.Approval)
	}
	if pr.Grade != "" {
		s += ", " + p.T("case.grade") + " " + pr.Grade
	}
	if pr.MaxAmount > 0 {
		s += ", ≤ " + p.Money(pr.MaxAmount)
	}
	if pr.MaxPayment > 0 {
		s += ", " + p.T("offer.payment") + " ≤ " + p.Money(pr.MaxPayment)
	}
	return s
}

// flat renders a JSON value compactly: strings bare, lists comma-joined, objects as k=v.
func flat(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	var walk func(any) string
	walk = func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = walk(e)
			}
			return strings.Join(parts, ", ")
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, 0, len(keys))
			for _, k := range keys {
				parts = append(parts, k+"="+walk(x[k]))
			}
			return strings.Join(parts, " ")
		case nil:
			return "—"
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	return walk(v)
}

// --- dashboard ---

type dashboardData struct {
	S          stats.Summary
	PerMinute  barChart
	Failures   barChart
	Latency    hbarChart
	Products   hbarChart
	SyncBudget time.Duration
	// SyncW is the sync share gauge's filled width, of 200.
	SyncW string
}

func (s *server) dashboardPage(w http.ResponseWriter, r *http.Request, req *request) {
	now := s.now()
	sum := s.feed.summary(now)
	d := dashboardData{S: sum, SyncBudget: s.syncBudget,
		PerMinute: columns(sum.PerMinute, sum.From, "bar"),
		Failures:  columns(sum.FailedPerMinute, sum.From, "bar bad"),
		Latency:   latencyBars(sum, req.lang),
		Products:  productBars(sum, req.lang),
		SyncW:     strconv.FormatFloat(200*sum.SyncShare(), 'f', 1, 64),
	}
	d.PerMinute.MaxLabel, d.Failures.MaxLabel = translate(req.lang, "dash.max"), translate(req.lang, "dash.max")
	frag := ""
	if r.URL.Query().Get("fragment") == "1" {
		frag = "body"
	}
	s.render(w, r, req, http.StatusOK, "dashboard", "dash.title", d, frag)
}

func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
