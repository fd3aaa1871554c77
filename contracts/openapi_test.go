package contracts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/loanflow/loanflow/contracts"
)

const (
	postPath = "/integrations/api/banking/loan_approval"
	getPath  = postPath + "/"
)

// loadDoc loads and validates the embedded OpenAPI document.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(contracts.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("validate openapi.yaml: %v", err)
	}
	return doc
}

// newRouter returns a router over doc.
func newRouter(t *testing.T, doc *openapi3.T) routers.Router {
	t.Helper()
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return r
}

// readJSON reads a golden sample and decodes it into any.
func readJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// schema returns the component schema called name.
func schema(t *testing.T, doc *openapi3.T, name string) *openapi3.Schema {
	t.Helper()
	ref, ok := doc.Components.Schemas[name]
	if !ok || ref.Value == nil {
		t.Fatalf("no component schema %s", name)
	}
	return ref.Value
}

// bearerOnly stands in for ingress's token check: it accepts any well-formed bearer token, so
// that the tests see the document require one.
func bearerOnly(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.Type != "http" || in.SecurityScheme.Scheme != "bearer" {
		return errors.New("unexpected security scheme")
	}
	token, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// route finds the operation of method and path.
func route(t *testing.T, r routers.Router, req *http.Request) *openapi3filter.RequestValidationInput {
	t.Helper()
	rt, params, err := r.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      rt,
		Options:    &openapi3filter.Options{AuthenticationFunc: bearerOnly},
	}
}

// validateRequest validates a POST of body with the given Authorization header.
func validateRequest(t *testing.T, r routers.Router, body []byte, authorization string) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, postPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return openapi3filter.ValidateRequest(context.Background(), route(t, r, req))
}

// validateResponse validates an answer of status with body to a request of method on path.
func validateResponse(t *testing.T, r routers.Router, method, path string, status int, header http.Header, body []byte) error {
	t.Helper()
	req, err := http.NewRequest(method, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := route(t, r, req)
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 h,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	})
}

func TestOpenAPIDocumentLoadsAndValidates(t *testing.T) {
	doc := loadDoc(t)

	if got, want := doc.OpenAPI, "3.0.3"; got != want {
		t.Errorf("openapi = %q, want %q", got, want)
	}
	if got, want := doc.Servers[0].URL, "/integrations"; got != want {
		t.Errorf("server = %q, want %q", got, want)
	}
	for _, op := range []struct{ method, path string }{
		{http.MethodPost, "/api/banking/loan_approval"},
		{http.MethodGet, "/api/banking/loan_approval/{search_id}"},
	} {
		if doc.Paths.Find(op.path) == nil || doc.Paths.Find(op.path).GetOperation(op.method) == nil {
			t.Errorf("no operation %s %s", op.method, op.path)
		}
	}
	sec := doc.Components.SecuritySchemes["bearerAuth"]
	if sec == nil || sec.Value.Type != "http" || sec.Value.Scheme != "bearer" {
		t.Errorf("bearerAuth = %+v, want an http bearer scheme", sec)
	}
	if len(doc.Security) != 1 {
		t.Errorf("security = %v, want bearerAuth on every operation", doc.Security)
	}

	// The statuses of each operation.
	statuses := func(op *openapi3.Operation) []string {
		var s []string
		for code := range op.Responses.Map() {
			s = append(s, code)
		}
		slices.Sort(s)
		return s
	}
	post := doc.Paths.Find("/api/banking/loan_approval").Post
	if got, want := statuses(post), []string{"200", "400", "403", "404", "413", "429", "500"}; !slices.Equal(got, want) {
		t.Errorf("POST statuses = %v, want %v", got, want)
	}
	get := doc.Paths.Find("/api/banking/loan_approval/{search_id}").Get
	if got, want := statuses(get), []string{"200", "403", "404", "429", "500"}; !slices.Equal(got, want) {
		t.Errorf("GET statuses = %v, want %v", got, want)
	}
	if post.Responses.Status(200).Value.Headers["Retry-After"] == nil {
		t.Error("200 answer has no Retry-After header")
	}
}

// TestOpenAPIExamplesAreGoldenSamples keeps the document's examples and the golden samples
// identical: components.examples "answer.X" is testdata/answers/X.json, "request.X" is
// testdata/requests/X.json, and every valid sample is an example.
func TestOpenAPIExamplesAreGoldenSamples(t *testing.T) {
	doc := loadDoc(t)

	var samples []string
	for _, dir := range []string{"answers", "requests"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			if dir == "requests" && strings.HasPrefix(name, "bad_") {
				continue // invalid on purpose: no example
			}
			samples = append(samples, strings.TrimSuffix(dir, "s")+"."+name)
		}
	}
	var examples []string
	for key := range doc.Components.Examples {
		examples = append(examples, key)
	}
	slices.Sort(samples)
	slices.Sort(examples)
	if !slices.Equal(examples, samples) {
		t.Fatalf("components.examples = %v\nwant one per golden sample: %v", examples, samples)
	}

	for _, key := range examples {
		kind, name, _ := strings.Cut(key, ".")
		path := filepath.Join("testdata", kind+"s", name+".json")
		got := doc.Components.Examples[key].Value.Value
		// Normalise the YAML-decoded example the way JSON decodes it.
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		var gotJSON any
		if err := json.Unmarshal(b, &gotJSON); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if want := readJSON(t, path); !reflect.DeepEqual(gotJSON, want) {
			t.Errorf("example %s differs from %s:\n got %s", key, path, b)
		}
	}
}

func TestAnswerSamplesValidate(t *testing.T) {
	doc := loadDoc(t)
	r := newRouter(t, doc)

	files, err := filepath.Glob(filepath.Join("testdata", "answers", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no answer samples")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			status := http.StatusOK
			if code, ok := strings.CutPrefix(name, "error_"); ok {
				if status, err = strconv.Atoi(code); err != nil {
					t.Fatalf("error sample %s: name it error_<status>.json", name)
				}
			}
			header := http.Header{}
			if name == "pending" {
				header.Set("Retry-After", "2")
			}
			searchID, _ := readJSON(t, f).(map[string]any)["search_id"].(string)

			// Every answer is a POST answer; the GET extension has no 400 and no 413.
			if err := validateResponse(t, r, http.MethodPost, postPath, status, header, body); err != nil {
				t.Errorf("POST %d: %v", status, err)
			}
			getOK := status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge
			err = validateResponse(t, r, http.MethodGet, getPath+"some-id", status, header, body)
			if got, want := err == nil, getOK; got != want {
				t.Errorf("GET %d valid = %v, want %v (err %v)", status, got, want, err)
			}
			if searchID != "" && err == nil {
				// A search_id that is not a valid one is a 404 for GET, never a 400.
				if err := validateResponse(t, r, http.MethodGet, getPath+searchID, status, header, body); err != nil {
					t.Errorf("GET %s: %v", searchID, err)
				}
			}
		})
	}
}

func TestRetryAfterHeader(t *testing.T) {
	doc := loadDoc(t)
	r := newRouter(t, doc)
	body, err := os.ReadFile(filepath.Join("testdata", "answers", "pending.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		value string
		valid bool
	}{
		{"1", true},
		{"2", true},
		{"120", true},
		{"0", false},
		{"soon", false},
		{"Wed, 21 Oct 2026 07:28:00 GMT", false},
	} {
		err := validateResponse(t, r, http.MethodPost, postPath, http.StatusOK, http.Header{"Retry-After": {tc.value}}, body)
		if got := err == nil; got != tc.valid {
			t.Errorf("Retry-After %q valid = %v, want %v (err %v)", tc.value, got, tc.valid, err)
		}
	}
}

func TestRequestSamplesValidate(t *testing.T) {
	doc := loadDoc(t)
	r := newRouter(t, doc)

	files, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no request samples")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			err = validateRequest(t, r, body, "Bearer token-1")
			if got, want := err == nil, !strings.HasPrefix(name, "bad_"); got != want {
				t.Errorf("valid = %v, want %v (err %v)", got, want, err)
			}
			if err := validateRequest(t, r, body, ""); err == nil {
				t.Error("a request without a bearer token validates")
			}
		})
	}
}

// The bad request sample fails exactly on the fields the 400 sample names.
func TestBadRequestSampleMatchesErrorSample(t *testing.T) {
	doc := loadDoc(t)
	app := schema(t, doc, "Application")
	bad := readJSON(t, filepath.Join("testdata", "requests", "bad_400.json")).(map[string]any)
	answer := readJSON(t, filepath.Join("testdata", "answers", "error_400.json")).(map[string]any)

	if got, want := answer["search_id"], bad["search_id"]; got != want {
		t.Errorf("error_400 search_id = %v, want the bad request's %v", got, want)
	}
	props := answer["properties"].([]any)
	// Each named field alone breaks the request; with all of them repaired it validates.
	valid := readJSON(t, filepath.Join("testdata", "requests", "loan.json")).(map[string]any)
	fixed := map[string]any{}
	for k, v := range bad {
		fixed[k] = v
	}
	for _, p := range props {
		field := p.(string)
		fixed[field] = valid[field]
		one := map[string]any{}
		for k, v := range valid {
			one[k] = v
		}
		one[field] = bad[field]
		if err := app.VisitJSON(one, openapi3.VisitAsRequest()); err == nil {
			t.Errorf("the bad %s alone validates", field)
		}
	}
	if err := app.VisitJSON(fixed, openapi3.VisitAsRequest()); err != nil {
		t.Errorf("bad_400 with %v repaired: %v", props, err)
	}
}

// clone deep-copies a JSON value.
func clone(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// field walks obj along keys and array indexes ("data", 0, "payment") and returns the object
// there.
func field(t *testing.T, v any, path ...any) map[string]any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", path)
	}
	return m
}

type schemaCase struct {
	name   string
	sample string // testdata path below testdata
	edit   func(t *testing.T, v any) any
	valid  bool
}

func runSchemaCases(t *testing.T, s *openapi3.Schema, opt openapi3.SchemaValidationOption, cases []schemaCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := clone(t, readJSON(t, filepath.Join("testdata", tc.sample)))
			if tc.edit != nil {
				v = tc.edit(t, v)
			}
			err := s.VisitJSON(v, opt)
			if got := err == nil; got != tc.valid {
				b, _ := json.Marshal(v)
				t.Errorf("valid = %v, want %v for %s (err %v)", got, tc.valid, b, err)
			}
		})
	}
}

func set(key string, value any, path ...any) func(*testing.T, any) any {
	return func(t *testing.T, v any) any {
		field(t, v, path...)[key] = value
		return v
	}
}

func del(key string, path ...any) func(*testing.T, any) any {
	return func(t *testing.T, v any) any {
		delete(field(t, v, path...), key)
		return v
	}
}

// TestRequestSchemaRules checks that the request schema enforces each field rule.
func TestRequestSchemaRules(t *testing.T) {
	doc := loadDoc(t)
	s := schema(t, doc, "LoanApprovalRequest")
	const loan, card, poll = "requests/loan.json", "requests/card.json", "requests/poll.json"
	long := strings.Repeat("a", 128)
	runSchemaCases(t, s, openapi3.VisitAsRequest(), []schemaCase{
		{"loan", loan, nil, true},
		{"card", card, nil, true},
		{"poll", poll, nil, true},
		{"card with amount and term", card, func(t *testing.T, v any) any {
			field(t, v)["amount"], field(t, v)["term"] = 150000.0, 12.0
			return v
		}, true},
		{"unknown request field is ignored", loan, set("region", "Москва"), true},
		{"unknown field in a poll is ignored", poll, set("attempt", 2.0), true},
		{"amount with kopecks", loan, set("amount", 600000.01), true},
		{"amount with one decimal", loan, set("amount", 500000.5), true},
		{"search_id of 128 characters", poll, set("search_id", long), true},
		{"search_id not a UUID", poll, set("search_id", "req_2026-11-23_0001"), true},

		{"loan without amount", loan, del("amount"), false},
		{"loan without term", loan, del("term"), false},
		{"without product_type", loan, del("product_type"), false},
		{"without phone_number", loan, del("phone_number"), false},
		{"without search_id", loan, del("search_id"), false},
		{"unknown product_type", loan, set("product_type", "mortgage"), false},
		{"phone with +7", loan, set("phone_number", "+79330445040"), false},
		{"phone of 11 digits", loan, set("phone_number", "89330445040"), false},
		{"phone of 9 digits", loan, set("phone_number", "933044504"), false},
		{"phone as a number", loan, set("phone_number", 9330445040.0), false},
		{"amount zero", loan, set("amount", 0.0), false},
		{"amount negative", loan, set("amount", -1.0), false},
		{"amount with three decimals", loan, set("amount", 500000.001), false},
		{"amount over ten billion", loan, set("amount", 10000000000.01), false},
		{"amount as a string", loan, set("amount", "500000.00"), false},
		{"term zero", loan, set("term", 0.0), false},
		{"term fractional", loan, set("term", 12.5), false},
		{"term as a string", loan, set("term", "24"), false},
		{"card with a bad amount", card, set("amount", -5.0), false},
		{"empty search_id", poll, set("search_id", ""), false},
		{"search_id of 129 characters", poll, set("search_id", long+"a"), false},
		{"search_id with a space", poll, set("search_id", "a b"), false},
		{"search_id with a slash", poll, set("search_id", "a/b"), false},
		{"search_id as a number", poll, set("search_id", 42.0), false},
		{"poll with a phone is an incomplete application", poll, set("phone_number", "9330445040"), false},
		{"empty object", poll, del("search_id"), false},
		{"array body", poll, func(*testing.T, any) any { return []any{} }, false},
		{"null body", poll, func(*testing.T, any) any { return nil }, false},
	})
}

// TestAnswerSchemaRules checks that the 200 answer schema enforces each field rule.
func TestAnswerSchemaRules(t *testing.T) {
	doc := loadDoc(t)
	s := schema(t, doc, "Answer")
	const loan, card, several = "answers/loan_done.json", "answers/card_done.json", "answers/several_offers.json"
	const rejected, pending = "answers/rejected.json", "answers/pending.json"
	offer := []any{"data", 0}
	runSchemaCases(t, s, openapi3.VisitAsResponse(), []schemaCase{
		{"loan", loan, nil, true},
		{"card", card, nil, true},
		{"several", several, nil, true},
		{"rejected", rejected, nil, true},
		{"pending", pending, nil, true},
		{"offer without optional lists", loan, func(t *testing.T, v any) any {
			for _, k := range []string{"special_conditions", "required_documents", "choosable_documents", "props"} {
				delete(field(t, v, offer...), k)
			}
			return v
		}, true},
		{"link only", loan, del("deep", "data", 0, "propousal_link"), true},
		{"deep only", loan, del("link", "data", 0, "propousal_link"), true},
		{"card with zero grace period", card, set("grace_period", 0.0, offer...), true},

		{"rejected with offers", rejected, func(t *testing.T, v any) any {
			field(t, v)["data"] = clone(t, readJSON(t, filepath.Join("testdata", loan))).(map[string]any)["data"]
			return v
		}, false},
		{"rejected with an empty array", rejected, set("data", []any{}), false},
		{"rejected without data", rejected, del("data"), false},
		{"approved with null data", loan, set("data", nil), false},
		{"approved with no offers", loan, set("data", []any{}), false},
		{"unknown decision", loan, set("decision", "approved"), false},
		{"unknown status", loan, set("status", "ready"), false},
		{"done without name", loan, del("name"), false},
		{"done with an empty name", loan, set("name", ""), false},
		{"done with an unknown field", loan, set("reason_codes", []any{"x"}), false},
		{"pending with a name", pending, set("name", "АО Супер-банк"), false},
		{"pending without status", pending, del("status"), false},
		{"offer with an unknown field", loan, set("grade", "B", offer...), false},
		{"offer with an unknown decision", loan, set("decision", "approved", offer...), false},
		{"offer without propousal_link", loan, del("propousal_link", offer...), false},
		{"offer with the link key spelled right", loan, func(t *testing.T, v any) any {
			o := field(t, v, offer...)
			o["proposal_link"] = o["propousal_link"]
			delete(o, "propousal_link")
			return v
		}, false},
		{"empty propousal_link", loan, set("propousal_link", map[string]any{}, offer...), false},
		{"http link", loan, set("link", "http://superbank.ru/loans", append(offer, "propousal_link")...), false},
		{"relative link", loan, set("link", "/loans/apply", append(offer, "propousal_link")...), false},
		{"relative deep link", loan, set("deep", "loans/apply", append(offer, "propousal_link")...), false},
		{"loan offer without term", loan, del("term", offer...), false},
		{"loan offer with a grace period", loan, set("grace_period", 30.0, offer...), false},
		{"loan offer without payment.max", loan, del("max", append(offer, "payment")...), false},
		{"loan offer with cc_rate", loan, set("cc_rate", 5.0, append(offer, "payment")...), false},
		{"loan offer with a fractional term", loan, set("min", 12.5, append(offer, "term")...), false},
		{"loan offer with a zero term", loan, set("min", 0.0, append(offer, "term")...), false},
		{"amount with three decimals", loan, set("min", 30000.001, append(offer, "amount")...), false},
		{"amount zero", loan, set("min", 0.0, append(offer, "amount")...), false},
		{"amount as a string", loan, set("max", "500000.00", append(offer, "amount")...), false},
		{"payment with three decimals", loan, set("min", 826.861, append(offer, "payment")...), false},
		{"rate with four decimals", loan, set("min", 21.9001, append(offer, "rate")...), false},
		{"negative total_cost", loan, set("min", -1.0, append(offer, "total_cost")...), false},
		{"rate without max", loan, del("max", append(offer, "rate")...), false},
		{"card offer without grace_period", card, del("grace_period", offer...), false},
		{"card offer with a term", card, set("term", map[string]any{"min": 12.0, "max": 12.0}, offer...), false},
		{"card offer without cc_rate", card, del("cc_rate", append(offer, "payment")...), false},
		{"card offer with payment.min", card, set("min", 500.0, append(offer, "payment")...), false},
		{"card offer with cc_rate zero", card, set("cc_rate", 0.0, append(offer, "payment")...), false},
		{"card offer with cc_rate over 100", card, set("cc_rate", 101.0, append(offer, "payment")...), false},
		{"card offer with a fractional grace period", card, set("grace_period", 1.5, offer...), false},
		{"second offer broken", several, del("term", "data", 1), false},
	})
}

// TestErrorSchemaRules checks the error bodies.
func TestErrorSchemaRules(t *testing.T) {
	doc := loadDoc(t)
	const e400, e404, e500 = "answers/error_400.json", "answers/error_404.json", "answers/error_500.json"
	t.Run("ErrorAnswer", func(t *testing.T) {
		runSchemaCases(t, schema(t, doc, "ErrorAnswer"), openapi3.VisitAsResponse(), []schemaCase{
			{"400", e400, nil, true},
			{"empty search_id", e400, set("search_id", ""), true},
			{"without properties", e400, del("properties"), true},
			{"without search_id", e400, del("search_id"), false},
			{"search_id null", e400, set("search_id", nil), false},
			{"invalid search_id echoed", e400, set("search_id", "a b"), false},
			{"without message", e400, del("message"), false},
			{"empty message", e400, set("message", ""), false},
			{"empty properties", e400, set("properties", []any{}), false},
			{"repeated property", e400, set("properties", []any{"amount", "amount"}), false},
			{"unknown field", e400, set("code", 400.0), false},
		})
	})
	t.Run("PlainErrorAnswer", func(t *testing.T) {
		runSchemaCases(t, schema(t, doc, "PlainErrorAnswer"), openapi3.VisitAsResponse(), []schemaCase{
			{"500", e500, nil, true},
			{"500 with properties", e500, set("properties", []any{"search_id"}), false},
			{"500 with an unknown field", e500, set("error", "nats: timeout"), false},
		})
	})
	t.Run("NotFoundAnswer", func(t *testing.T) {
		runSchemaCases(t, schema(t, doc, "NotFoundAnswer"), openapi3.VisitAsResponse(), []schemaCase{
			{"404", e404, nil, true},
			{"other message", e404, set("message", "Not found"), false},
			{"with properties", e404, set("properties", []any{"search_id"}), false},
		})
	})
}

// The offers inside loan.decision.made.v1 are partner-API offers.
func TestEventOffersMatchOfferSchema(t *testing.T) {
	doc := loadDoc(t)
	s := schema(t, doc, "Offer")
	ev := readJSON(t, filepath.Join("testdata", "events", "loan.decision.made.v1.json")).(map[string]any)
	offers, _ := ev["offers"].([]any)
	if len(offers) == 0 {
		t.Fatal("the decision event sample has no offers")
	}
	for i, o := range offers {
		if err := s.VisitJSON(o, openapi3.VisitAsResponse()); err != nil {
			t.Errorf("offers[%d]: %v", i, err)
		}
	}
}

// GET accepts any path segment as search_id: one that breaks the rule is answered 404, so a
// validating middleware must not turn it into a 400.
func TestGetAcceptsAnySearchID(t *testing.T) {
	doc := loadDoc(t)
	r := newRouter(t, doc)
	for _, id := range []string{"0b6c1f4e-5d2a-4e8b-9c3f-7a1d2e4b6c80", "not%20valid", strings.Repeat("x", 200)} {
		req, err := http.NewRequest(http.MethodGet, getPath+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer token-2")
		if err := openapi3filter.ValidateRequest(context.Background(), route(t, r, req)); err != nil {
			t.Errorf("GET %s: %v", id, err)
		}
		req.Header.Del("Authorization")
		if err := openapi3filter.ValidateRequest(context.Background(), route(t, r, req)); err == nil {
			t.Errorf("GET %s without a token validates", id)
		}
	}
}
