package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/tests/conformance"
)

// runFake runs the named scenarios (all when none) against bank behind httptest.
func runFake(t *testing.T, bank *fakeBank, cfg conformance.Config, names ...string) conformance.Report {
	t.Helper()
	if bank == nil {
		bank = &fakeBank{}
	}
	if bank.token == "" {
		bank.token = fakeToken
	}
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/integrations"
	cfg.Token = fakeToken
	if cfg.Deadline == 0 {
		cfg.Deadline = 5 * time.Second
	}
	cfg.Scenarios = names
	if cfg.Inputs.RejectPhone == "" {
		cfg.Inputs.RejectPhone = fakeReject
	}
	if cfg.Inputs.SeveralPhone == "" {
		cfg.Inputs.SeveralPhone = fakeSeveral
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := conformance.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// result returns one scenario's result from rep.
func result(t *testing.T, rep conformance.Report, name string) conformance.Result {
	t.Helper()
	res, ok := rep.Result(name)
	if !ok {
		t.Fatalf("scenario %s did not run", name)
	}
	return res
}

// onDone changes every done answer's body.
func onDone(change func(body map[string]any)) func(*fakeAnswer) {
	return func(a *fakeAnswer) {
		if a.kind == "done" {
			change(a.body)
		}
	}
}

// onOffers changes every offer of every done answer.
func onOffers(change func(offer map[string]any)) func(*fakeAnswer) {
	return func(a *fakeAnswer) {
		if a.kind == "done" {
			for _, o := range a.offers() {
				change(o)
			}
		}
	}
}

// onKind changes every answer of one kind.
func onKind(kind string, change func(a *fakeAnswer)) func(*fakeAnswer) {
	return func(a *fakeAnswer) {
		if a.kind == kind {
			change(a)
		}
	}
}

// editRaw rewrites the bytes of every answer of one kind.
func editRaw(kind, old, new string) func(*fakeAnswer) {
	return onKind(kind, func(a *fakeAnswer) { a.raw = bytes.Replace(a.bytes(), []byte(old), []byte(new), 1) })
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestCorrectEndpointPasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		pending int
		skipped []string
	}{
		{"done at once", 0, []string{"async_poll"}},
		{"pending first", 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := runFake(t, &fakeBank{pending: tc.pending}, conformance.Config{Concurrency: 20})
			for _, res := range rep.Results {
				want := conformance.Pass
				if slices.Contains(tc.skipped, res.Name) {
					want = conformance.Skip
				}
				if res.Status != want {
					t.Errorf("%s: %s %q, want %s", res.Name, res.Status, res.Reasons, want)
				}
			}
			if got, want := len(rep.Results), len(conformance.Scenarios()); got != want {
				t.Errorf("%d scenarios ran, want %d", got, want)
			}
			if rep.FirstAnswer.Count == 0 || rep.TimeToDone.Count == 0 {
				t.Errorf("no latencies: %+v %+v", rep.FirstAnswer, rep.TimeToDone)
			}
		})
	}
}

// TestBrokenAnswersFail feeds the simulator one deliberately broken behaviour at a time and
// requires the scenario that should notice to fail with a reason saying why.
func TestBrokenAnswersFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		bank     *fakeBank
		cfg      conformance.Config
		scenario string
		want     string // a substring of one reason
	}{
		// Rejection and data.
		{name: "rejected with data []", scenario: "rejection", want: `decision "rejected" with data [], want null`,
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) {
				if b["decision"] == "rejected" {
					b["data"] = []any{}
				}
			})}},
		{name: "rejected without data", scenario: "rejection", want: `decision "rejected" with data absent`,
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) { delete(b, "data") })}},
		{name: "approved with data null", scenario: "loan", want: `decision "has_approve" with data null`,
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) { b["data"] = nil })}},
		{name: "no bank name", scenario: "loan", want: "without the bank's name",
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) { b["name"] = " " })}},

		// Loan offers.
		{name: "loan offer without term", scenario: "loan", want: "offer 1 (loan): no term (required for a loan)",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { delete(o, "term") })}},
		{name: "loan offer without payment.max", scenario: "loan", want: "no payment.min and payment.max",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { delete(sub(o, "payment"), "max") })}},
		{name: "loan offer with a grace period", scenario: "loan", want: "grace_period in a loan offer",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { o["grace_period"] = 30 })}},
		{name: "loan offer with cc_rate", scenario: "loan", want: "payment.cc_rate in a loan offer",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { sub(o, "payment")["cc_rate"] = 5 })}},
		{name: "card offer for a loan application", scenario: "loan", want: `product_type "credit_card", but the application asked for "loan"`,
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) { b["data"] = []any{cardOffer("x")} })}},

		// Card offers.
		{name: "card without grace_period", scenario: "credit_card", want: "offer 1 (credit_card): no grace_period",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { delete(o, "grace_period") })}},
		{name: "card without cc_rate", scenario: "credit_card", want: "no payment.cc_rate",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { o["payment"] = map[string]any{} })}},
		{name: "card with a term", scenario: "credit_card", want: "term in a credit-card offer",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { o["term"] = map[string]any{"min": 1, "max": 12} })}},
		{name: "card with payment min and max", scenario: "credit_card", want: "payment.min/max in a credit-card offer",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { sub(o, "payment")["min"] = 100 })}},

		// min ≤ max.
		{name: "amount min > max", scenario: "loan", want: "amount.min 300000 > amount.max 30000",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { o["amount"] = map[string]any{"min": 300000, "max": 30000} })}},
		{name: "rate min > max", scenario: "credit_card", want: "rate.min 39.9 > rate.max 29.9",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { o["rate"] = map[string]any{"min": 39.9, "max": 29.9} })}},
		{name: "term min > max", scenario: "several_offers", want: "offer 2 (loan): term.min 60 > term.max 12",
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) {
				if offers := b["data"].([]any); len(offers) > 1 {
					offers[1].(map[string]any)["term"] = map[string]any{"min": 60, "max": 12}
				}
			})}},
		{name: "payment min > max", scenario: "loan", want: "payment.min 999999 > payment.max",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { sub(o, "payment")["min"] = 999999 })}},

		// Proposal links.
		{name: "relative propousal_link.link", scenario: "loan", want: `propousal_link.link "/apply?offer=1" is not an absolute http(s) URL`,
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { sub(o, "propousal_link")["link"] = "/apply?offer=1" })}},
		{name: "relative propousal_link.deep", scenario: "credit_card", want: `propousal_link.deep "cards/apply" is not an absolute URL`,
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { sub(o, "propousal_link")["deep"] = "cards/apply" })}},
		{name: "propousal_link without link and deep", scenario: "loan", want: "propousal_link has neither link nor deep",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { o["propousal_link"] = map[string]any{} })}},
		{name: "no propousal_link", scenario: "credit_card", want: "no propousal_link",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { delete(o, "propousal_link") })}},

		// search_id echoed everywhere; personal data.
		{name: "done answer with another search_id", scenario: "loan", want: `search_id "someone-else", want`,
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) { b["search_id"] = "someone-else" })}},
		{name: "pending answer without search_id", scenario: "async_poll", want: "no search_id in the answer",
			bank: &fakeBank{pending: 1, breakIt: onKind("pending", func(a *fakeAnswer) { delete(a.body, "search_id") })}},
		{name: "404 without the search_id", scenario: "not_found", want: `search_id "", want`,
			bank: &fakeBank{breakIt: onKind("404", func(a *fakeAnswer) { a.body["search_id"] = "" })}},
		{name: "400 without the readable search_id", scenario: "bad_request_example", want: `search_id "", want`,
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) { a.body["search_id"] = "" })}},
		{name: "403 with another search_id", scenario: "forbidden_no_token", want: `search_id "x", want`,
			bank: &fakeBank{breakIt: onKind("403", func(a *fakeAnswer) { a.body["search_id"] = "x" })}},
		{name: "the phone number echoed", scenario: "loan", want: "echoes the phone number",
			bank: &fakeBank{breakIt: onOffers(func(o map[string]any) { sub(o, "propousal_link")["link"] = "https://bank.example/?p=9001234567" })}},

		// Strict JSON and the wire.
		{name: "duplicate top-level key", scenario: "loan", want: "duplicate JSON key $.status",
			bank: &fakeBank{breakIt: editRaw("done", `"status":"done"`, `"status":"done","status":"done"`)}},
		{name: "duplicate key inside an offer", scenario: "credit_card", want: "duplicate JSON key $.data[0].grace_period",
			bank: &fakeBank{breakIt: editRaw("done", `"grace_period":120`, `"grace_period":120,"grace_period":90`)}},
		{name: "a trailing comma", scenario: "not_found", want: "not strict JSON",
			bank: &fakeBank{breakIt: editRaw("404", `}`, `,}`)}},
		{name: "single-quoted JSON", scenario: "loan", want: "not strict JSON",
			bank: &fakeBank{breakIt: editRaw("done", `"status":"done"`, `'status':'done'`)}},
		{name: "text/plain answer", scenario: "not_found", want: `Content-Type "text/plain; charset=utf-8", want application/json`,
			bank: &fakeBank{breakIt: onKind("404", func(a *fakeAnswer) { a.header.Set("Content-Type", "text/plain; charset=utf-8") })}},
		{name: "a field the document lacks", scenario: "loan", want: "breaks contracts/openapi.yaml",
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) { b["score"] = 700 })}},
		{name: "an unknown decision", scenario: "loan", want: `decision "approved", want has_approve or rejected`,
			bank: &fakeBank{breakIt: onDone(func(b map[string]any) { b["decision"] = "approved" })}},

		// Pending and polls.
		{name: "pending without Retry-After", scenario: "async_poll", want: "pending answer without a usable Retry-After: no Retry-After header",
			bank: &fakeBank{pending: 1, breakIt: onKind("pending", func(a *fakeAnswer) { a.header.Del("Retry-After") })}},
		{name: "Retry-After that is not a delay", scenario: "async_poll", want: `Retry-After "soon" is neither seconds nor an HTTP date`,
			bank: &fakeBank{pending: 1, breakIt: onKind("pending", func(a *fakeAnswer) { a.header.Set("Retry-After", "soon") })}},
		{name: "an unknown status", scenario: "loan", want: `status "processing", want done or pending`,
			bank: &fakeBank{breakIt: onKind("pending", func(a *fakeAnswer) { a.body["status"] = "processing" }), pending: 1}},
		{name: "never done", scenario: "async_poll", want: "not done within the deadline 2s",
			bank: &fakeBank{pending: 1 << 30}, cfg: conformance.Config{Deadline: 2 * time.Second}},
		{name: "a poll after done answers differently", scenario: "async_poll", want: "poll after done",
			bank: &fakeBank{unstable: true}},
		{name: "first answer 500", scenario: "loan", want: "want 200 done or pending",
			bank: &fakeBank{breakIt: onKind("done", func(a *fakeAnswer) {
				a.status, a.body = 500, errorBody(a.body["search_id"].(string), "Ошибка")
			})}},

		// 400s.
		{name: "400 without properties", scenario: "bad_request_example", want: "400 without properties",
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) { delete(a.body, "properties") })}},
		{name: "400 without a message", scenario: "missing_fields", want: "error without a message",
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) { a.body["message"] = "" })}},
		{name: "bad example properties reversed", scenario: "bad_request_example", want: `properties ["amount","phone_number"], want ["phone_number","amount"]`,
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) { a.body["properties"] = []string{"amount", "phone_number"} })}},
		{name: "200 for the bad example", scenario: "bad_request_example", want: "Yandex's bad example → 200: want 400",
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) {
				a.status, a.body = 200, map[string]any{"search_id": a.body["search_id"], "status": "done", "name": "Б", "decision": "rejected", "data": nil}
			})}},
		{name: "missing amount named as term", scenario: "missing_fields", want: `loan without amount → 400: properties ["term"], want ["amount"]`,
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) {
				if p, _ := a.body["properties"].([]string); slices.Equal(p, []string{"amount"}) {
					a.body["properties"] = []string{"term"}
				}
			})}},
		{name: "a wrong type accepted", scenario: "wrong_types", want: "amount as a string → 200: want 400",
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) {
				if p, _ := a.body["properties"].([]string); slices.Equal(p, []string{"amount"}) {
					a.status, a.body = 200, map[string]any{"search_id": a.body["search_id"], "status": "pending"}
					a.header.Set("Retry-After", "1")
				}
			})}},
		{name: "an unknown product_type accepted", scenario: "unknown_product_type", want: `product_type "mortgage" → 404: want 400`,
			bank: &fakeBank{breakIt: onKind("400", func(a *fakeAnswer) {
				if p, _ := a.body["properties"].([]string); slices.Equal(p, []string{"product_type"}) {
					a.status, a.body = 404, errorBody(a.body["search_id"].(string), "Заявок с таким search_id не найдено")
				}
			})}},
		{name: "malformed JSON read leniently", scenario: "malformed_json", want: "a trailing comma (as in Yandex's examples) → 404: want 400",
			bank: &fakeBank{lenient: true}},
		{name: "no body limit", scenario: "oversized_body", want: "→ 200: want 413 or 400",
			bank: &fakeBank{noLimit: true}},
		{name: "properties in a 404", scenario: "not_found", want: "properties in an answer other than 400",
			bank: &fakeBank{breakIt: onKind("404", func(a *fakeAnswer) { a.body["properties"] = []string{"search_id"} })}},

		// 403.
		{name: "no token accepted", scenario: "forbidden_no_token", want: "application without a token → 200: want 403",
			bank: &fakeBank{noAuth: true}},
		{name: "a wrong token accepted", scenario: "forbidden_wrong_token", want: "application with a wrong token → 200: want 403",
			bank: &fakeBank{anyToken: true}},
		{name: "a refused application recorded", scenario: "forbidden_no_token", want: "an application refused with 403 was recorded",
			bank: &fakeBank{recordRefused: true}},

		// Repeats.
		{name: "a conflicting repeat accepted", scenario: "conflicting_repeat", want: "repeat with another amount → 200: want 400",
			bank: &fakeBank{noConflicts: true}},
		{name: "a repeat answered differently", scenario: "idempotent_repeat", want: "repeat after done → 200",
			bank: &fakeBank{unstable: true}},
		{name: "concurrent answers that differ", scenario: "concurrent_duplicates", want: "concurrent answers were done but differ from the final answer",
			bank: &fakeBank{unstable: true}, cfg: conformance.Config{Concurrency: 50}},

		// The optional GET extension, when offered, must answer like a poll.
		{name: "GET answers differently", scenario: "get_extension", want: "GET of the done application → 200",
			bank: &fakeBank{breakIt: func(a *fakeAnswer) {
				if a.get && a.kind == "done" {
					a.body["name"] = "Другой банк"
				}
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := result(t, runFake(t, tt.bank, tt.cfg, tt.scenario), tt.scenario)
			if res.Status != conformance.Fail {
				t.Fatalf("%s: status %s %q, want fail", tt.scenario, res.Status, res.Reasons)
			}
			if !slices.ContainsFunc(res.Reasons, func(r string) bool { return strings.Contains(r, tt.want) }) {
				t.Errorf("%s: reasons %q, want one containing %q", tt.scenario, res.Reasons, tt.want)
			}
		})
	}
}

// TestUndrivableScenariosSkip: an endpoint that cannot be driven to a precondition gets a skip
// with the reason, not a failure; strict mode turns the skip into a failure.
func TestUndrivableScenariosSkip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		bank     *fakeBank
		cfg      conformance.Config
		scenario string
		status   conformance.Status
		want     string
	}{
		{name: "no GET extension", bank: &fakeBank{noGet: true}, scenario: "get_extension", status: conformance.Skip,
			want: "answered 404: the GET extension is not offered"},
		{name: "done at once", scenario: "async_poll", status: conformance.Skip, want: "the pending path was not exercised"},
		{name: "done at once, strict", cfg: conformance.Config{Strict: true}, scenario: "async_poll", status: conformance.Fail,
			want: "strict mode allows no skip"},
		{name: "no rejection", scenario: "rejection", status: conformance.Skip, cfg: conformance.Config{Inputs: conformance.Inputs{RejectPhone: "9001112233"}},
			want: "a rejection could not be driven"},
		{name: "one offer only", scenario: "several_offers", status: conformance.Skip, cfg: conformance.Config{Inputs: conformance.Inputs{SeveralPhone: "9001112233"}},
			want: "with 1 offer(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := runFake(t, tt.bank, tt.cfg, tt.scenario)
			res := result(t, rep, tt.scenario)
			if res.Status != tt.status || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], tt.want) {
				t.Errorf("%s: %s %q, want %s with a reason containing %q", tt.scenario, res.Status, res.Reasons, tt.status, tt.want)
			}
			if rep.OK() != (tt.status != conformance.Fail) {
				t.Errorf("OK() = %v with status %s", rep.OK(), tt.status)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  conformance.Config
		want string
	}{
		{"no URL", conformance.Config{}, "want an absolute http(s) URL"},
		{"relative URL", conformance.Config{BaseURL: "/integrations"}, "want an absolute http(s) URL"},
		{"unknown scenario", conformance.Config{BaseURL: "http://127.0.0.1:1/integrations", Scenarios: []string{"nope"}}, `unknown scenario "nope"`},
		{"negative deadline", conformance.Config{BaseURL: "http://127.0.0.1:1", Deadline: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := conformance.Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestUnreachableEndpointFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Config{BaseURL: url + "/integrations", Token: "t", Scenarios: []string{"loan"}})
	if err != nil {
		t.Fatal(err)
	}
	if res := result(t, rep, "loan"); res.Status != conformance.Fail || !strings.Contains(res.Reasons[0], "connect") {
		t.Errorf("loan: %s %q, want a failure to connect", res.Status, res.Reasons)
	}
}

func TestReportFormats(t *testing.T) {
	rep := runFake(t, &fakeBank{noGet: true, breakIt: onOffers(func(o map[string]any) { delete(o, "grace_period") })},
		conformance.Config{}, "credit_card", "get_extension", "not_found")
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FAIL  credit_card", "- credit-card application → 200: offer 1 (credit_card): no grace_period (required for a credit card)",
		"SKIP  get_extension", "PASS  not_found", "first answer", "time to done",
		"3 scenarios: 1 passed, 1 failed, 1 skipped — FAIL",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), fakeToken) {
		t.Error("the text report shows the token")
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got conformance.Report
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("JSON report does not read back: %v\n%s", err, js.String())
	}
	if got.Failed != 1 || got.Skipped != 1 || got.Passed != 1 || len(got.Results) != 3 || got.Results[0].Status != conformance.Fail {
		t.Errorf("JSON report read back as %+v", got)
	}
	if got.FirstAnswer.Count != rep.FirstAnswer.Count || got.FirstAnswer.P50 <= 0 {
		t.Errorf("first-answer latency %+v, want %+v", got.FirstAnswer, rep.FirstAnswer)
	}
	for _, key := range []string{`"p50_ms"`, `"p99_ms"`, `"time_to_done"`, `"reasons"`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON report lacks %s", key)
		}
	}
}
