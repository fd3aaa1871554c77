package contracts_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// decodeStrict decodes one strict JSON value from b into v, rejecting unknown fields and
// trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// roundTrip decodes the sample at path into v (a pointer to a Go type of the contract),
// encodes v again and compares the result with the sample's compact form, as JSON values.
func roundTrip(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatalf("%s is not strict JSON: %v", path, err)
	}
	if err := decodeStrict(compact.Bytes(), v); err != nil {
		t.Fatalf("decode %s into %T: %v", path, v, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	var got, want any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(compact.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not round-trip through %T:\n got %s\nwant %s", path, v, out, compact.Bytes())
	}
}

// samples returns the names (without .json) of the samples in testdata/dir.
func samples(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no samples in testdata/%s", dir)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	return names
}

// answerType returns a new value of the Go type of the answer sample called name.
func answerType(name string) any {
	switch {
	case name == "pending":
		return new(partnerapi.PendingAnswer)
	case strings.HasPrefix(name, "error_"):
		return new(partnerapi.ErrorAnswer)
	default:
		return new(partnerapi.DoneAnswer)
	}
}

func TestAnswerSamplesRoundTrip(t *testing.T) {
	for _, name := range samples(t, "answers") {
		t.Run(name, func(t *testing.T) {
			roundTrip(t, filepath.Join("testdata", "answers", name+".json"), answerType(name))
		})
	}
}

func TestRequestSamplesRoundTrip(t *testing.T) {
	for _, name := range samples(t, "requests") {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "requests", name+".json")
			switch {
			case name == "poll":
				roundTrip(t, path, new(partnerapi.Poll))
			case strings.HasPrefix(name, "bad_"):
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := decodeStrict(b, new(partnerapi.Application)); err == nil {
					t.Error("the bad request decodes into partnerapi.Application")
				}
			default:
				roundTrip(t, path, new(partnerapi.Application))
			}
		})
	}
}

// annuity is the monthly payment, in kopecks, that repays principal kopecks over n months at
// rate percent a year: A·r/(1−(1+r)^−n), r = rate/1200, rounded half up to the kopeck.
func annuity(principal partnerapi.Money, rate float64, n int) partnerapi.Money {
	r := rate / 1200
	return partnerapi.Money(math.Floor(float64(principal)*r/(1-math.Pow(1+r, -float64(n))) + 0.5))
}

// TestDoneSamplesAreConsistent checks the figures of the final answers: ranges in order,
// loan payments computed by the annuity formula, ПСК equal to the rate (no fees), offers
// splitting the amount range to the kopeck, data null exactly when rejected.
func TestDoneSamplesAreConsistent(t *testing.T) {
	for _, name := range samples(t, "answers") {
		a, ok := answerType(name).(*partnerapi.DoneAnswer)
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "answers", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := decodeStrict(b, a); err != nil {
				t.Fatal(err)
			}
			if got, want := a.Data == nil, a.Decision == partnerapi.DecisionRejected; got != want {
				t.Errorf("data null = %v, want %v for decision %s", got, want, a.Decision)
			}
			for i, o := range a.Data {
				checkOffer(t, i, o)
				if i > 0 && o.ProductType == a.Data[i-1].ProductType {
					if got, want := o.Amount.Min, a.Data[i-1].Amount.Max+1; got != want {
						t.Errorf("offer %d starts at %v, want %v: one kopeck above the previous offer", i, got, want)
					}
				}
			}
		})
	}
}

func checkOffer(t *testing.T, i int, o partnerapi.Offer) {
	t.Helper()
	if o.Amount.Min > o.Amount.Max || o.Rate.Min > o.Rate.Max || o.TotalCost.Min > o.TotalCost.Max {
		t.Errorf("offer %d: a min above its max: %+v", i, o)
	}
	if o.TotalCost != o.Rate {
		t.Errorf("offer %d: total_cost %v, want the rate %v (no fees)", i, o.TotalCost, o.Rate)
	}
	if o.ProposalLink.Link == "" && o.ProposalLink.Deep == "" {
		t.Errorf("offer %d: no propousal_link", i)
	}
	switch o.ProductType {
	case partnerapi.ProductLoan:
		if o.Term == nil || o.Payment.Min == nil || o.Payment.Max == nil {
			t.Fatalf("loan offer %d without term or payment", i)
		}
		if o.Term.Min > o.Term.Max {
			t.Errorf("offer %d: term %+v", i, *o.Term)
		}
		if got, want := *o.Payment.Min, annuity(o.Amount.Min, o.Rate.Min, o.Term.Max); got != want {
			t.Errorf("offer %d: payment.min = %v, want %v (amount.min over term.max at rate.min)", i, got, want)
		}
		if got, want := *o.Payment.Max, annuity(o.Amount.Max, o.Rate.Max, o.Term.Min); got != want {
			t.Errorf("offer %d: payment.max = %v, want %v (amount.max over term.min at rate.max)", i, got, want)
		}
	case partnerapi.ProductCreditCard:
		if o.GracePeriod == nil || o.Payment.CCRate == nil {
			t.Errorf("card offer %d without grace_period or cc_rate", i)
		}
	default:
		t.Errorf("offer %d: product_type %q", i, o.ProductType)
	}
}

func TestAnnuity(t *testing.T) {
	// 1 000 000 ₽ over 12 months at 12% a year: 88 848.79 ₽ (a textbook figure).
	if got, want := annuity(100_000_000, 12, 12), partnerapi.Money(8_884_879); got != want {
		t.Errorf("annuity = %v, want %v", got, want)
	}
}

// eventTypeConstants parses events/events.go and returns the values of its Type* string
// constants, so that a new constant without a sample fails this test.
func eventTypeConstants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("events", "events.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "Type") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("events.%s is not a string literal", id.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				consts[id.Name] = v
			}
		}
	}
	return consts
}

// eventPayloads maps each event type to its payload type.
var eventPayloads = map[string]func() any{
	events.TypeApplicationReceived: func() any { return new(events.ApplicationReceived) },
	events.TypeApplicationScored:   func() any { return new(events.ApplicationScored) },
	events.TypeDecisionMade:        func() any { return new(events.DecisionMade) },
	events.TypeApplicationFailed:   func() any { return new(events.ApplicationFailed) },
	events.TypeApplicationReferred: func() any { return new(events.ApplicationReferred) },
	events.TypeUnderwritingTaken:   func() any { return new(events.UnderwritingTaken) },
	events.TypeUnderwritingDecided: func() any { return new(events.UnderwritingDecided) },
	events.TypeOfferClicked:        func() any { return new(events.OfferClicked) },
}

func TestEventSamplesCoverEveryType(t *testing.T) {
	consts := eventTypeConstants(t)
	var fromConsts []string
	for _, v := range consts {
		fromConsts = append(fromConsts, v)
	}
	slices.Sort(fromConsts)

	files := samples(t, "events")
	slices.Sort(files)
	if !slices.Equal(files, fromConsts) {
		t.Errorf("event samples %v, want one per events.Type* constant %v", files, fromConsts)
	}
	types := slices.Clone(events.Types)
	slices.Sort(types)
	if !slices.Equal(types, fromConsts) {
		t.Errorf("events.Types = %v, want every Type* constant %v", events.Types, fromConsts)
	}
	for _, typ := range fromConsts {
		if eventPayloads[typ] == nil {
			t.Errorf("no payload type for %s in this test", typ)
		}
		if !strings.HasSuffix(typ, ".v1") {
			t.Errorf("%s: want a .v1 type", typ)
		}
	}
}

func TestEventSamplesRoundTrip(t *testing.T) {
	for _, typ := range samples(t, "events") {
		t.Run(typ, func(t *testing.T) {
			payload := eventPayloads[typ]
			if payload == nil {
				t.Fatalf("%s.json is not named after an event type", typ)
			}
			roundTrip(t, filepath.Join("testdata", "events", typ+".json"), payload())
		})
	}
}

var (
	hexHash   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	phoneMask = regexp.MustCompile(`^[0-9]{2}\*{6}[0-9]{2}$`)
)

func TestReceivedSampleHoldsNoPhone(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "events", events.TypeApplicationReceived+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.ApplicationReceived
	if err := decodeStrict(b, &ev); err != nil {
		t.Fatal(err)
	}
	if !hexHash.MatchString(ev.PhoneHash) {
		t.Errorf("phone_hash = %q, want 64 lowercase hex digits", ev.PhoneHash)
	}
	if !hexHash.MatchString(ev.Fingerprint) {
		t.Errorf("fingerprint = %q, want 64 lowercase hex digits", ev.Fingerprint)
	}
	if !phoneMask.MatchString(ev.PhoneMask) {
		t.Errorf("phone_mask = %q, want two digits, six stars, two digits", ev.PhoneMask)
	}
}

// phoneLike finds what could be a Russian phone number: 10 digits, optionally after +7, 7 or 8,
// written together or split by spaces, dashes or brackets, and not part of a longer run of
// digits.
var phoneLike = regexp.MustCompile(`(?:^|[^0-9])((?:\+?[78][ (-]*)?[0-9]{3}[ )-]*[0-9]{3}[ -]*[0-9]{2}[ -]*[0-9]{2})(?:[^0-9]|$)`)

// TestNoPhoneNumbersInSamples scans every sample but the requests (which carry
// phone_number by contract) for phone-like strings, and for the request samples' numbers
// anywhere, also inside hashes.
func TestNoPhoneNumbersInSamples(t *testing.T) {
	var requestPhones []string
	for _, name := range samples(t, "requests") {
		v := readJSON(t, filepath.Join("testdata", "requests", name+".json"))
		if m, ok := v.(map[string]any); ok {
			if p, ok := m["phone_number"].(string); ok && len(p) >= 8 {
				requestPhones = append(requestPhones, p)
			}
		}
	}
	if len(requestPhones) == 0 {
		t.Fatal("no phone numbers in the request samples: the scan would prove nothing")
	}
	// The detector finds the request samples' numbers.
	for _, p := range []string{"9330445040", "+79330445040", "8 (933) 044-50-40", "id 9330445040."} {
		if !phoneLike.MatchString(p) {
			t.Errorf("phoneLike misses %q", p)
		}
	}
	for _, s := range []string{"500000.00", "2026-11-23T09:41:07.512Z", "93******40", "1500000.00", "12345678901234"} {
		if phoneLike.MatchString(s) {
			t.Errorf("phoneLike matches %q", s)
		}
	}

	scanned := 0
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Base(filepath.Dir(path)) == "requests" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		if m := phoneLike.FindSubmatch(b); m != nil {
			t.Errorf("%s contains a phone-like string %q", path, m[1])
		}
		for _, p := range requestPhones {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s contains the phone number of a request sample", path)
			}
		}
		if hasKey(readJSON(t, path), "phone_number") {
			t.Errorf("%s has a phone_number field", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned == 0 {
		t.Fatal("scanned no samples")
	}
}

// hasKey reports whether a JSON value has an object member called key at any depth.
func hasKey(v any, key string) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == key || hasKey(e, key) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasKey(e, key) {
				return true
			}
		}
	}
	return false
}
