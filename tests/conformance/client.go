package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loanflow/loanflow/contracts/apicheck"
	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// Polling: start from Retry-After (or firstPoll without one), grow by pollGrowth, at most maxPoll.
const (
	firstPoll  = 250 * time.Millisecond
	pollGrowth = 1.5
	maxPoll    = 5 * time.Second
	// maxAnswer bounds the answer body read; a valid answer is a few KiB.
	maxAnswer = 1 << 20
)

// env is what every scenario shares: the endpoint, the HTTP client and the OpenAPI validator.
type env struct {
	cfg      Config
	endpoint string
	client   *http.Client
	doc      *apicheck.Validator
	// docMu serialises validation: the validator is not documented as safe for concurrent use.
	docMu sync.Mutex
}

func newEnv(cfg Config) (*env, error) {
	doc, err := apicheck.New()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = cfg.Concurrency + 16
	tr.MaxIdleConnsPerHost = cfg.Concurrency + 16
	return &env{
		cfg:      cfg,
		endpoint: strings.TrimSuffix(cfg.BaseURL, "/") + partnerapi.Path,
		doc:      doc,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A redirect is not in the contract: it is reported, not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func (e *env) close() { e.client.CloseIdleConnections() }

// validate checks an answer against contracts/openapi.yaml. The document knows the API under
// /integrations; the endpoint under test may have any base path.
func (e *env) validate(r request, a answer) error {
	path := partnerapi.DefaultBase + partnerapi.Path
	method := http.MethodPost
	if r.get != "" {
		path += "/" + url.PathEscape(r.get)
		method = http.MethodGet
	}
	e.docMu.Lock()
	defer e.docMu.Unlock()
	return e.doc.Response(method, path, a.status, a.header, a.raw)
}

// auth is the Authorization a request carries.
type auth int

const (
	withToken auth = iota
	noToken
	wrongToken
)

// request is one call the simulator makes.
type request struct {
	// label names the call in reasons: "loan application", "poll", ...
	label string
	// get, when set, makes the call GET {endpoint}/{get} instead of POST body.
	get  string
	body []byte
	auth auth
	// echo lists the search_id values the answer may carry; empty: not checked.
	echo []string
	// product is the application's product_type, for the rules of a 200 answer.
	product string
	// phone is the applicant's phone number, which no answer may echo.
	phone string
	// unreadable marks a body that is not a JSON object: its 400 may lack properties.
	unreadable bool
}

// answer is one HTTP answer.
type answer struct {
	status  int
	header  http.Header
	raw     []byte
	body    map[string]any // the decoded JSON object (numbers as json.Number); nil if none
	latency time.Duration
}

// field returns a string member of the answer.
func (a answer) field(name string) string { s, _ := a.body[name].(string); return s }

// done reports whether a is a 200 done answer.
func (a answer) done() bool { return a.status == http.StatusOK && a.field("status") == "done" }

// pending reports whether a is a 200 pending answer.
func (a answer) pending() bool { return a.status == http.StatusOK && a.field("status") == "pending" }

// same reports whether two answers carry the same JSON object.
func same(a, b answer) bool { return a.body != nil && reflect.DeepEqual(a.body, b.body) }

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, snippet(a.raw)) }

// exchange makes one call and reads the answer, without checking it.
func (p *probe) exchange(ctx context.Context, r request) (answer, error) {
	method, target, body := http.MethodPost, p.env.endpoint, io.Reader(bytes.NewReader(r.body))
	if r.get != "" {
		method, target, body = http.MethodGet, target+"/"+url.PathEscape(r.get), nil
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "loanflow-conformance/1")
	switch {
	case r.auth == withToken && p.env.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+p.env.cfg.Token)
	case r.auth == wrongToken:
		req.Header.Set("Authorization", "Bearer wrong-"+newID())
	}
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	start := time.Now()
	resp, err := p.env.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw, latency: time.Since(start)}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&a.body) != nil {
		a.body = nil
	}
	return a, nil
}

// send makes one call and checks the answer against the document and the contract's rules.
func (p *probe) send(ctx context.Context, r request) (answer, bool) {
	a, err := p.exchange(ctx, r)
	if err != nil {
		p.failf("%s: %v", r.label, err)
		return answer{}, false
	}
	p.check(r, a)
	return a, true
}

// check records every way the answer breaks the contract.
func (p *probe) check(r request, a answer) {
	for _, problem := range p.env.problems(r, a) {
		p.failf("%s → %d: %s", r.label, a.status, problem)
	}
}

// expect sends r and requires one of statuses and, when props is not nil, exactly those
// properties in a 400.
func (p *probe) expect(ctx context.Context, r request, props []string, statuses ...int) (answer, bool) {
	a, ok := p.send(ctx, r)
	if !ok {
		return a, false
	}
	if !slices.Contains(statuses, a.status) {
		p.failf("%s → %d: want %s; got %s", r.label, a.status, statusList(statuses), snippet(a.raw))
		return a, false
	}
	if a.status == http.StatusBadRequest && props != nil {
		if got := strs(a.body["properties"]); !slices.Equal(got, props) {
			p.failf("%s → 400: properties %s, want %s", r.label, jsonText(a.body["properties"]), jsonText(props))
			return a, false
		}
	}
	return a, true
}

func statusList(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, " or ")
}

// application is a valid application the simulator sends.
type application struct {
	SearchID    string   `json:"search_id"`
	ProductType string   `json:"product_type"`
	PhoneNumber string   `json:"phone_number"`
	Amount      *float64 `json:"amount,omitempty"`
	Term        *int     `json:"term,omitempty"`
}

func loanApp(phone string, amount float64, term int) application {
	return application{SearchID: newID(), ProductType: "loan", PhoneNumber: phone, Amount: &amount, Term: &term}
}

func cardApp(phone string) application {
	return application{SearchID: newID(), ProductType: "credit_card", PhoneNumber: phone}
}

// request is the call that sends app.
func (app application) request(label string, a auth) request {
	b, _ := json.Marshal(app)
	return request{label: label, body: b, auth: a, echo: []string{app.SearchID}, product: app.ProductType, phone: app.PhoneNumber}
}

// poll is the call that polls for app's answer.
func (app application) poll(label string) request {
	return request{label: label, body: pollBody(app.SearchID), echo: []string{app.SearchID}, product: app.ProductType}
}

func pollBody(searchID string) []byte { return []byte(`{"search_id":"` + searchID + `"}`) }

// apply sends app as a first call: the answer must be 200, done or pending. Its latency counts
// as a first answer.
func (p *probe) apply(ctx context.Context, app application, label string) (answer, bool) {
	r := app.request(label, withToken)
	a, ok := p.send(ctx, r)
	if !ok {
		return a, false
	}
	p.mu.Lock()
	p.first = append(p.first, a.latency)
	p.mu.Unlock()
	if !a.done() && !a.pending() {
		p.failf("%s → %d: want 200 done or pending; got %s", label, a.status, snippet(a.raw))
		return a, false
	}
	return a, true
}

// untilDone polls for app's answer with backoff until it is done or the deadline (counted from
// started, the first call) passes. first is the first call's answer.
func (p *probe) untilDone(ctx context.Context, app application, first answer, started time.Time) (answer, bool) {
	a := first
	wait := firstPoll
	if d, err := retryAfter(first.header); err == nil && d > 0 {
		wait = d
	}
	deadline := started.Add(p.env.cfg.Deadline)
	for n := 1; !a.done(); n++ {
		if !a.pending() {
			p.failf("poll %d for %s → %d: want 200 done or pending; got %s", n-1, app.ProductType, a.status, snippet(a.raw))
			return a, false
		}
		if time.Now().Add(wait).After(deadline) {
			p.failf("not done within the deadline %v: still pending after %d polls", p.env.cfg.Deadline, n-1)
			return a, false
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			p.failf("stopped while polling: %v", ctx.Err())
			return a, false
		case <-t.C:
		}
		var ok bool
		if a, ok = p.send(ctx, app.poll(fmt.Sprintf("poll %d", n))); !ok {
			return a, false
		}
		wait = min(time.Duration(float64(wait)*pollGrowth), maxPoll)
	}
	p.mu.Lock()
	p.toDone = append(p.toDone, time.Since(started))
	p.mu.Unlock()
	return a, true
}

// decide sends app and polls until its answer is done.
func (p *probe) decide(ctx context.Context, app application, label string) (answer, bool) {
	start := time.Now()
	first, ok := p.apply(ctx, app, label)
	if !ok {
		return first, false
	}
	return p.untilDone(ctx, app, first, start)
}

// notRecorded requires that a poll for searchID answers 404: the application refused earlier
// (what) must not exist.
func (p *probe) notRecorded(ctx context.Context, searchID, what string) {
	r := request{label: "poll after " + what, body: pollBody(searchID), echo: []string{searchID}}
	a, ok := p.send(ctx, r)
	if ok && a.status != http.StatusNotFound {
		p.failf("%s was recorded: a poll for its search_id answers %s, want 404", what, a)
	}
}

// newID is a random UUID (version 4), a fresh search_id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
