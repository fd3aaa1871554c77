package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// scenario is one thing Yandex relies on, checked end to end.
type scenario struct {
	name  string
	about string
	run   func(context.Context, *probe)
}

// scenarios run in this order: the cheap ones first, the concurrent one last.
var scenarios = []scenario{
	{"forbidden_no_token", "403 without a token; the refused application is not recorded", forbiddenNoToken},
	{"forbidden_wrong_token", "403 with a wrong token; the refused application is not recorded", forbiddenWrongToken},
	{"loan", "a cash loan is done with loan offers", loanExample},
	{"credit_card", "a credit card (no amount or term) is done with card offers", cardExample},
	{"several_offers", "a loan with several offers", severalOffers},
	{"rejection", "a rejection: decision rejected, data null", rejection},
	{"async_poll", "a pending first answer with Retry-After, then polls until done", asyncPoll},
	{"get_extension", "optional: GET …/loan_approval/{search_id} answers like a poll", getExtension},
	{"bad_request_example", "Yandex's bad example: 400 with properties [phone_number, amount]; nothing recorded", badRequestExample},
	{"not_found", "a poll for an unknown search_id: 404 with the search_id and a message", notFound},
	{"malformed_json", "bodies that are not one strict JSON object: 400", malformedJSON},
	{"wrong_types", "fields of the wrong JSON type: 400 naming the field", wrongTypes},
	{"invalid_values", "fields breaking their rule: 400 naming the field", invalidValues},
	{"missing_fields", "required fields missing, per product: 400 naming them", missingFields},
	{"unknown_product_type", "a product_type other than loan and credit_card: 400", unknownProductType},
	{"oversized_body", "a body far over any limit: 413 or 400", oversizedBody},
	{"idempotent_repeat", "the same application repeated: the same answer, before and after done", idempotentRepeat},
	{"conflicting_repeat", "the same search_id with other fields: 400 [search_id]; the first stays intact", conflictingRepeat},
	{"concurrent_duplicates", "identical applications at once: all 200, every done answer identical", concurrentDuplicates},
}

func (p *probe) ordinaryLoan() application {
	return loanApp(p.in.Phone, p.in.LoanAmount, p.in.LoanTerm)
}

func forbiddenNoToken(ctx context.Context, p *probe) { forbidden(ctx, p, noToken, "without a token") }

func forbiddenWrongToken(ctx context.Context, p *probe) {
	forbidden(ctx, p, wrongToken, "with a wrong token")
}

func forbidden(ctx context.Context, p *probe, a auth, how string) {
	if p.env.cfg.Token == "" {
		p.skipf("no token given: a refused call cannot be told from an accepted one")
		return
	}
	app := p.ordinaryLoan()
	if _, ok := p.expect(ctx, app.request("application "+how, a), nil, http.StatusForbidden); ok {
		p.notRecorded(ctx, app.SearchID, "an application refused with 403")
	}
	id := newID()
	p.expect(ctx, request{label: "poll " + how, body: pollBody(id), auth: a, echo: []string{id}}, nil, http.StatusForbidden)
}

func loanExample(ctx context.Context, p *probe) {
	offered(ctx, p, p.ordinaryLoan(), "loan application")
}

func cardExample(ctx context.Context, p *probe) {
	offered(ctx, p, cardApp(p.in.Phone), "credit-card application")
}

// offered requires app to be done with offers.
func offered(ctx context.Context, p *probe, app application, label string) {
	final, ok := p.decide(ctx, app, label)
	if ok && final.field("decision") != "has_approve" {
		p.failf("%s for phone %s: decision %q, want has_approve with %s offers", label, app.PhoneNumber, final.field("decision"), app.ProductType)
	}
}

func severalOffers(ctx context.Context, p *probe) {
	app := loanApp(p.in.SeveralPhone, p.in.SeveralAmount, p.in.SeveralTerm)
	final, ok := p.decide(ctx, app, "loan application")
	if !ok {
		return
	}
	given := fmt.Sprintf("phone %s, amount %v, term %d", app.PhoneNumber, *app.Amount, *app.Term)
	if n := len(array(final.body["data"])); n < 2 {
		p.skipf("the endpoint answered %s with %d offer(s) for %s: several offers could not be driven (set the several-offers inputs)",
			final.field("decision"), n, given)
	}
}

// array is the JSON array in v, whatever its elements.
func array(v any) []any { arr, _ := v.([]any); return arr }

func rejection(ctx context.Context, p *probe) {
	app := loanApp(p.in.RejectPhone, p.in.LoanAmount, p.in.LoanTerm)
	final, ok := p.decide(ctx, app, "loan application")
	if ok && final.field("decision") != "rejected" {
		p.skipf("the endpoint answered %s for phone %s: a rejection could not be driven (set the reject phone)",
			final.field("decision"), app.PhoneNumber)
	}
}

func asyncPoll(ctx context.Context, p *probe) {
	app := p.ordinaryLoan()
	start := time.Now()
	first, ok := p.apply(ctx, app, "loan application")
	if !ok {
		return
	}
	final, ok := p.untilDone(ctx, app, first, start)
	if !ok {
		return
	}
	if again, ok := p.send(ctx, app.poll("poll after done")); ok && !same(again, final) {
		p.failf("poll after done → %s; the done answer was %s", again, snippet(final.raw))
	}
	if first.done() {
		p.skipf("the first answer was already done: the pending path was not exercised (a poll of the done application was checked)")
	}
}

func getExtension(ctx context.Context, p *probe) {
	app := p.ordinaryLoan()
	final, ok := p.decide(ctx, app, "loan application")
	if !ok {
		return
	}
	r := request{label: "GET of the done application", get: app.SearchID, echo: []string{app.SearchID}, product: app.ProductType}
	a, err := p.exchange(ctx, r)
	if err != nil {
		p.failf("%s: %v", r.label, err)
		return
	}
	if a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed {
		p.skipf("GET of a known application answered %d: the GET extension is not offered (it is optional)", a.status)
		return
	}
	p.check(r, a)
	if !same(a, final) {
		p.failf("%s → %s; the poll's done answer was %s", r.label, a, snippet(final.raw))
	}
	id := newID()
	p.expect(ctx, request{label: "GET of an unknown search_id", get: id, echo: []string{id}}, nil, http.StatusNotFound)
	p.expect(ctx, request{label: "GET without a token", get: app.SearchID, auth: noToken, echo: []string{app.SearchID, ""}}, nil, http.StatusForbidden)
	// An id that breaks the search_id rule is never echoed back, not even on a refusal.
	p.expect(ctx, request{label: "GET without a token of an impossible id", get: "bad!id", auth: noToken, echo: []string{""}}, nil, http.StatusForbidden)
}

func badRequestExample(ctx context.Context, p *probe) {
	id := newID()
	body := `{"search_id":"` + id + `","product_type":"loan","phone_number":"93304450","amount":"500000.00$","term":24}`
	r := request{label: "Yandex's bad example", body: []byte(body), echo: []string{id}, product: "loan"}
	if _, ok := p.expect(ctx, r, []string{"phone_number", "amount"}, http.StatusBadRequest); ok {
		p.notRecorded(ctx, id, "the invalid application")
	}
}

func notFound(ctx context.Context, p *probe) {
	id := newID()
	p.expect(ctx, request{label: "poll for an unknown search_id", body: pollBody(id), echo: []string{id}}, nil, http.StatusNotFound)
}

// badCase is one invalid request body.
type badCase struct {
	name string
	// body builds the body around a fresh search_id.
	body func(id string) string
	// props are the properties the 400 must name; nil for a body that is not a JSON object.
	props []string
	// noID marks a body whose search_id is missing or unusable: the answer echoes "".
	noID bool
}

// sendBad sends every case and requires a 400 naming its properties.
func sendBad(ctx context.Context, p *probe, cases []badCase, statuses ...int) {
	if len(statuses) == 0 {
		statuses = []int{http.StatusBadRequest}
	}
	for _, c := range cases {
		id := newID()
		r := request{label: c.name, body: []byte(c.body(id)), echo: []string{id}, unreadable: c.props == nil}
		switch {
		case c.props == nil:
			r.echo = []string{"", id}
		case c.noID:
			r.echo = []string{""}
		}
		p.expect(ctx, r, c.props, statuses...)
	}
}

// loanBody is a valid loan application with changes: a nil value drops the field.
func loanBody(p *probe, changes map[string]any) func(id string) string {
	return func(id string) string {
		m := map[string]any{"search_id": id, "product_type": "loan", "phone_number": p.in.Phone, "amount": p.in.LoanAmount, "term": p.in.LoanTerm}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
}

// cardBody is a valid credit-card application with changes, as loanBody.
func cardBody(p *probe, changes map[string]any) func(id string) string {
	return func(id string) string {
		m := map[string]any{"search_id": id, "product_type": "credit_card", "phone_number": p.in.Phone}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
}

func raw(format string) func(id string) string {
	return func(id string) string { return strings.ReplaceAll(format, "ID", id) }
}

func malformedJSON(ctx context.Context, p *probe) {
	sendBad(ctx, p, []badCase{
		{name: "truncated JSON", body: raw(`{"search_id":"ID","product_type":"loan"`)},
		{name: "a trailing comma (as in Yandex's examples)", body: raw(`{"search_id":"ID","product_type":"credit_card","phone_number":"` + p.in.Phone + `",}`)},
		{name: "unquoted keys", body: raw(`{search_id:"ID",product_type:"credit_card",phone_number:"` + p.in.Phone + `"}`)},
		{name: "single quotes", body: raw(`{'search_id':'ID'}`)},
		{name: "a JSON array", body: raw(`[{"search_id":"ID"}]`)},
		{name: "a JSON string", body: raw(`"ID"`)},
		{name: "two objects", body: raw(`{"search_id":"ID"}{"search_id":"ID"}`)},
		{name: "an empty body", body: raw(``)},
		{name: "a body that is not UTF-8", body: raw("{\"search_id\":\"ID\",\"product_type\":\"credit_card\",\"phone_number\":\"\xff\xfe\"}")},
	})
}

func wrongTypes(ctx context.Context, p *probe) {
	sendBad(ctx, p, []badCase{
		{name: "search_id as a number", body: loanBody(p, map[string]any{"search_id": 12345}), props: []string{"search_id"}, noID: true},
		{name: "product_type as a number", body: loanBody(p, map[string]any{"product_type": 1}), props: []string{"product_type"}},
		{name: "phone_number as a number", body: loanBody(p, map[string]any{"phone_number": json.Number(p.in.Phone)}), props: []string{"phone_number"}},
		{name: "amount as a string", body: loanBody(p, map[string]any{"amount": "200000"}), props: []string{"amount"}},
		{name: "amount as a boolean", body: loanBody(p, map[string]any{"amount": true}), props: []string{"amount"}},
		{name: "amount as an object", body: loanBody(p, map[string]any{"amount": map[string]any{"value": 200000}}), props: []string{"amount"}},
		{name: "term as a string", body: loanBody(p, map[string]any{"term": "24"}), props: []string{"term"}},
		{name: "term with a fraction", body: loanBody(p, map[string]any{"term": 24.5}), props: []string{"term"}},
		{name: "term as an array", body: loanBody(p, map[string]any{"term": []int{24}}), props: []string{"term"}},
	})
}

func invalidValues(ctx context.Context, p *probe) {
	sendBad(ctx, p, []badCase{
		{name: "phone_number of 9 digits", body: loanBody(p, map[string]any{"phone_number": p.in.Phone[:len(p.in.Phone)-1]}), props: []string{"phone_number"}},
		{name: "phone_number with the 8 prefix", body: loanBody(p, map[string]any{"phone_number": "8" + p.in.Phone}), props: []string{"phone_number"}},
		{name: "phone_number with +7", body: loanBody(p, map[string]any{"phone_number": "+7" + p.in.Phone}), props: []string{"phone_number"}},
		{name: "phone_number with letters", body: loanBody(p, map[string]any{"phone_number": "93304450ab"}), props: []string{"phone_number"}},
		{name: "amount 0", body: loanBody(p, map[string]any{"amount": 0}), props: []string{"amount"}},
		{name: "a negative amount", body: loanBody(p, map[string]any{"amount": -1000}), props: []string{"amount"}},
		{name: "amount with three decimals", body: loanBody(p, map[string]any{"amount": json.Number("100000.001")}), props: []string{"amount"}},
		{name: "term 0", body: loanBody(p, map[string]any{"term": 0}), props: []string{"term"}},
		{name: "a negative term", body: loanBody(p, map[string]any{"term": -12}), props: []string{"term"}},
		{name: "two bad fields, reported in the table's order", body: loanBody(p, map[string]any{"term": 0, "phone_number": "12"}), props: []string{"phone_number", "term"}},
	})
}

func missingFields(ctx context.Context, p *probe) {
	sendBad(ctx, p, []badCase{
		{name: "loan without search_id", body: loanBody(p, map[string]any{"search_id": nil}), props: []string{"search_id"}, noID: true},
		{name: "loan without product_type", body: loanBody(p, map[string]any{"product_type": nil}), props: []string{"product_type"}},
		{name: "loan without phone_number", body: loanBody(p, map[string]any{"phone_number": nil}), props: []string{"phone_number"}},
		{name: "loan without amount", body: loanBody(p, map[string]any{"amount": nil}), props: []string{"amount"}},
		{name: "loan without term", body: loanBody(p, map[string]any{"term": nil}), props: []string{"term"}},
		{name: "loan without amount and term", body: loanBody(p, map[string]any{"amount": nil, "term": nil}), props: []string{"amount", "term"}},
		{name: "credit card without phone_number", body: cardBody(p, map[string]any{"phone_number": nil}), props: []string{"phone_number"}},
		{name: "credit card without search_id", body: cardBody(p, map[string]any{"search_id": nil}), props: []string{"search_id"}, noID: true},
		{name: "an empty object", body: raw(`{}`), props: []string{"search_id"}, noID: true},
	})
}

func unknownProductType(ctx context.Context, p *probe) {
	sendBad(ctx, p, []badCase{
		{name: `product_type "mortgage"`, body: loanBody(p, map[string]any{"product_type": "mortgage"}), props: []string{"product_type"}},
		{name: `product_type "LOAN"`, body: loanBody(p, map[string]any{"product_type": "LOAN"}), props: []string{"product_type"}},
		{name: `product_type "debit_card"`, body: cardBody(p, map[string]any{"product_type": "debit_card"}), props: []string{"product_type"}},
		{name: `product_type ""`, body: loanBody(p, map[string]any{"product_type": ""}), props: []string{"product_type"}},
	})
}

func oversizedBody(ctx context.Context, p *probe) {
	pad := strings.Repeat("x", p.env.cfg.OversizeBytes)
	sendBad(ctx, p, []badCase{
		{name: fmt.Sprintf("a %d-byte body", p.env.cfg.OversizeBytes), body: loanBody(p, map[string]any{"padding": pad})},
	}, http.StatusRequestEntityTooLarge, http.StatusBadRequest)
}

func idempotentRepeat(ctx context.Context, p *probe) {
	app := p.ordinaryLoan()
	start := time.Now()
	first, ok := p.apply(ctx, app, "application")
	if !ok {
		return
	}
	second, ok := p.apply(ctx, app, "immediate repeat")
	if !ok {
		return
	}
	final, ok := p.untilDone(ctx, app, first, start)
	if !ok {
		return
	}
	for _, a := range []struct {
		label string
		a     answer
	}{{"application", first}, {"immediate repeat", second}} {
		if a.a.done() && !same(a.a, final) {
			p.failf("%s → %s; the final answer is %s", a.label, a.a, snippet(final.raw))
		}
	}
	if later, ok := p.apply(ctx, app, "repeat after done"); ok && !same(later, final) {
		p.failf("repeat after done → %s; the final answer is %s", later, snippet(final.raw))
	}
}

func conflictingRepeat(ctx context.Context, p *probe) {
	app := p.ordinaryLoan()
	start := time.Now()
	first, ok := p.apply(ctx, app, "application")
	if !ok {
		return
	}
	otherAmount, otherTerm := app, app
	amount, term := *app.Amount+1000, *app.Term+1
	otherAmount.Amount, otherTerm.Term = &amount, &term
	p.expect(ctx, otherAmount.request("repeat with another amount", withToken), []string{"search_id"}, http.StatusBadRequest)
	final, ok := p.untilDone(ctx, app, first, start)
	if !ok {
		return
	}
	p.expect(ctx, otherTerm.request("repeat with another term after done", withToken), []string{"search_id"}, http.StatusBadRequest)
	if again, ok := p.send(ctx, app.poll("poll after the conflicts")); ok && !same(again, final) {
		p.failf("poll after the conflicting repeats → %s; the final answer was %s", again, snippet(final.raw))
	}
}

func concurrentDuplicates(ctx context.Context, p *probe) {
	n := p.env.cfg.Concurrency
	app := p.ordinaryLoan()
	answers := make([]answer, n)
	oks := make([]bool, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			<-gate
			answers[i], oks[i] = p.apply(ctx, app, "concurrent application")
		})
	}
	close(gate)
	wg.Wait()
	if p.failed() {
		return
	}
	final, ok := p.untilDone(ctx, app, answers[0], start)
	if !ok {
		return
	}
	differ := 0
	for i, a := range answers {
		if oks[i] && a.done() && !same(a, final) {
			differ++
		}
	}
	if differ > 0 {
		p.failf("%d of %d concurrent answers were done but differ from the final answer %s", differ, n, snippet(final.raw))
	}
}
