package conformance_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// fakeBank is a tiny partner endpoint that keeps the contract, written from the spec alone, so
// that each test can break exactly one thing in its answers. Phones: fakeReject is rejected,
// fakeSeveral gets two loan offers, anyone else one offer of the product asked for.
type fakeBank struct {
	// token is the bearer token accepted.
	token string
	// pending is how many calls of an application (first call, repeats, polls) answer pending
	// before it is done.
	pending int
	// noGet leaves the GET extension out.
	noGet bool
	// anyToken accepts every non-empty token; noAuth accepts calls without one too.
	anyToken, noAuth bool
	// recordRefused records an application before checking the token.
	recordRefused bool
	// noConflicts answers a repeat with other fields like an identical one.
	noConflicts bool
	// unstable makes every answer different (a fresh offer id per call).
	unstable bool
	// noLimit reads bodies of any size.
	noLimit bool
	// lenient answers a body that is not a JSON object as a poll of nothing: 404.
	lenient bool
	// breakIt changes an answer before it is written.
	breakIt func(*fakeAnswer)

	mu    sync.Mutex
	apps  map[string]*fakeApp
	calls int
}

const (
	fakeToken   = "fake-token"
	fakeReject  = "9037654321"
	fakeSeveral = "9330445040"
)

type fakeApp struct {
	key     string
	product string
	phone   string
	calls   int
}

// fakeAnswer is an answer about to be written. kind is done, pending or the status code
// ("400", "403", "404", "413"); get marks an answer to the GET extension.
type fakeAnswer struct {
	kind   string
	get    bool
	status int
	header http.Header
	body   map[string]any
	// raw, when set, is written instead of body.
	raw []byte
}

// bytes is the answer as written.
func (a *fakeAnswer) bytes() []byte {
	if a.raw != nil {
		return a.raw
	}
	b, _ := json.Marshal(a.body)
	return b
}

// offers is the done answer's data.
func (a *fakeAnswer) offers() []map[string]any {
	arr, _ := a.body["data"].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, o := range arr {
		out = append(out, o.(map[string]any))
	}
	return out
}

var searchIDRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func (f *fakeBank) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const path = "/integrations/api/banking/loan_approval"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == path:
		f.post(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, path+"/") && !f.noGet:
		f.getAnswer(w, r, strings.TrimPrefix(r.URL.Path, path+"/"))
	default:
		f.write(w, &fakeAnswer{kind: "404", status: 404, body: errorBody("", "Заявок с таким search_id не найдено")})
	}
}

func (f *fakeBank) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case f.noAuth:
		return true
	case f.anyToken:
		return ok && tok != ""
	}
	return ok && tok == f.token
}

func (f *fakeBank) post(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if !f.noLimit {
		body = http.MaxBytesReader(w, r.Body, 64<<10)
	}
	raw, err := io.ReadAll(body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		f.write(w, &fakeAnswer{kind: "413", status: 413, body: errorBody("", "Тело запроса слишком большое")})
		return
	}
	fields, searchID, props, readable := parse(raw)
	if !f.authorized(r) {
		if f.recordRefused && readable && len(props) == 0 && fields["product_type"] != nil {
			f.lookup(searchID, fields)
		}
		f.write(w, &fakeAnswer{kind: "403", status: 403, body: errorBody(searchID, "Доступ запрещён")})
		return
	}
	if !readable && f.lenient {
		f.write(w, &fakeAnswer{kind: "404", status: 404, body: errorBody(searchID, "Заявок с таким search_id не найдено")})
		return
	}
	if !readable || len(props) > 0 {
		b := errorBody(searchID, "Неверный запрос")
		if readable {
			b["properties"] = props
		}
		f.write(w, &fakeAnswer{kind: "400", status: 400, body: b})
		return
	}
	app, conflict := f.lookup(searchID, fields)
	switch {
	case conflict:
		b := errorBody(searchID, "Поле search_id уже использовано")
		b["properties"] = []string{"search_id"}
		f.write(w, &fakeAnswer{kind: "400", status: 400, body: b})
	case app == nil:
		f.write(w, &fakeAnswer{kind: "404", status: 404, body: errorBody(searchID, "Заявок с таким search_id не найдено")})
	default:
		f.write(w, f.answer(searchID, app, false))
	}
}

func (f *fakeBank) getAnswer(w http.ResponseWriter, r *http.Request, searchID string) {
	echo := searchID
	if !searchIDRule.MatchString(echo) {
		echo = ""
	}
	if !f.authorized(r) {
		f.write(w, &fakeAnswer{kind: "403", get: true, status: 403, body: errorBody(echo, "Доступ запрещён")})
		return
	}
	f.mu.Lock()
	app := f.apps[searchID]
	f.mu.Unlock()
	if app == nil {
		f.write(w, &fakeAnswer{kind: "404", get: true, status: 404, body: errorBody(echo, "Заявок с таким search_id не найдено")})
		return
	}
	f.write(w, f.answer(searchID, app, true))
}

// lookup records a new application or finds the existing one; fields of a poll are nil.
func (f *fakeBank) lookup(searchID string, fields map[string]json.RawMessage) (app *fakeApp, conflict bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps == nil {
		f.apps = map[string]*fakeApp{}
	}
	app = f.apps[searchID]
	if fields["product_type"] == nil && fields["phone_number"] == nil {
		return app, false
	}
	var product, phone string
	_ = json.Unmarshal(fields["product_type"], &product)
	_ = json.Unmarshal(fields["phone_number"], &phone)
	key := product + "|" + phone + "|" + string(fields["amount"]) + "|" + string(fields["term"])
	if app == nil {
		app = &fakeApp{key: key, product: product, phone: phone}
		f.apps[searchID] = app
		return app, false
	}
	return app, app.key != key && !f.noConflicts
}

func (f *fakeBank) answer(searchID string, app *fakeApp, get bool) *fakeAnswer {
	f.mu.Lock()
	app.calls++
	f.calls++
	calls, n := app.calls, f.calls
	f.mu.Unlock()
	if calls <= f.pending {
		return &fakeAnswer{kind: "pending", get: get, status: 200, header: http.Header{"Retry-After": {"1"}},
			body: map[string]any{"search_id": searchID, "status": "pending"}}
	}
	body := map[string]any{"search_id": searchID, "status": "done", "name": "АО Фейк-банк", "decision": "has_approve"}
	suffix := ""
	if f.unstable {
		suffix = "-" + strconv.Itoa(n)
	}
	switch {
	case app.phone == fakeReject:
		body["decision"], body["data"] = "rejected", nil
	case app.product == "credit_card":
		body["data"] = []any{cardOffer(searchID + suffix)}
	case app.phone == fakeSeveral:
		body["data"] = []any{loanOffer(searchID+suffix, 30000, 600000), loanOffer(searchID+"-2"+suffix, 600000.01, 1500000)}
	default:
		body["data"] = []any{loanOffer(searchID+suffix, 30000, 300000)}
	}
	return &fakeAnswer{kind: "done", get: get, status: 200, body: body}
}

func loanOffer(id string, lo, hi float64) map[string]any {
	return map[string]any{
		"product_type": "loan", "decision": "pre_approved",
		"amount":         map[string]any{"min": lo, "max": hi},
		"term":           map[string]any{"min": 12, "max": 60},
		"rate":           map[string]any{"min": 19.9, "max": 29.9},
		"total_cost":     map[string]any{"min": 19.9, "max": 29.9},
		"payment":        map[string]any{"min": 793.12, "max": 28964.15},
		"propousal_link": map[string]any{"link": "https://bank.example/apply?offer=" + id, "deep": "bank://apply?offer=" + id},
	}
}

func cardOffer(id string) map[string]any {
	return map[string]any{
		"product_type": "credit_card", "decision": "pre_approved",
		"amount":         map[string]any{"min": 15000, "max": 300000},
		"rate":           map[string]any{"min": 29.9, "max": 39.9},
		"total_cost":     map[string]any{"min": 29.9, "max": 39.9},
		"grace_period":   120,
		"payment":        map[string]any{"cc_rate": 3},
		"propousal_link": map[string]any{"link": "https://bank.example/cards?offer=" + id, "deep": "bank://cards?offer=" + id},
	}
}

func errorBody(searchID, message string) map[string]any {
	return map[string]any{"search_id": searchID, "message": message}
}

func (f *fakeBank) write(w http.ResponseWriter, a *fakeAnswer) {
	if a.header == nil {
		a.header = http.Header{}
	}
	a.header.Set("Content-Type", "application/json")
	if f.breakIt != nil {
		f.breakIt(a)
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.bytes())
}

// parse reads a body by the spec: the fields, the search_id to echo, the failing fields in
// the table's order, and whether the body was a JSON object at all.
func parse(raw []byte) (fields map[string]json.RawMessage, searchID string, props []string, readable bool) {
	if !utf8.Valid(raw) || json.Unmarshal(raw, &fields) != nil || fields == nil {
		return nil, "", nil, false
	}
	if err := json.Unmarshal(fields["search_id"], &searchID); err != nil || !searchIDRule.MatchString(searchID) {
		searchID = ""
		props = append(props, "search_id")
	}
	_, isApp := fields["product_type"]
	for _, k := range []string{"phone_number", "amount", "term"} {
		if _, ok := fields[k]; ok {
			isApp = true
		}
	}
	if !isApp {
		return fields, searchID, props, true
	}
	var product, phone string
	if json.Unmarshal(fields["product_type"], &product) != nil || (product != "loan" && product != "credit_card") {
		props = append(props, "product_type")
	}
	if json.Unmarshal(fields["phone_number"], &phone) != nil || !regexp.MustCompile(`^[0-9]{10}$`).MatchString(phone) {
		props = append(props, "phone_number")
	}
	loan := product == "loan"
	if a, ok := fields["amount"]; ok || loan {
		if !validAmount(a) {
			props = append(props, "amount")
		}
	}
	if t, ok := fields["term"]; ok || loan {
		if n, err := strconv.Atoi(string(t)); err != nil || n <= 0 {
			props = append(props, "term")
		}
	}
	return fields, searchID, props, true
}

// validAmount: a JSON number, greater than 0, at most two decimals.
func validAmount(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	if s == "" || !strings.ContainsAny(s[:1], "0123456789") || strings.ContainsAny(s, "eE") {
		return false
	}
	v, err := strconv.ParseFloat(s, 64)
	_, frac, _ := strings.Cut(s, ".")
	return err == nil && v > 0 && len(strings.TrimRight(frac, "0")) <= 2
}
