package chain

import (
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/events"
)

func TestPseudonymise(t *testing.T) {
	h := mustHasher(t)
	ph := h.Phone("9330445040")
	phone := `{"hash":"` + ph + `","mask":"93******40"}`
	tests := []struct {
		name, in, want string
	}{
		{"phone_number key", `{"phone_number":"9330445040","amount":300000.00}`,
			`{"amount":300000.00,"phone_number":` + phone + `}`},
		{"phone key, nested", `{"client":{"phone":"9330445040"}}`, `{"client":{"phone":` + phone + `}}`},
		{"phone key, any case", `{"Phone":"9330445040"}`, `{"Phone":` + phone + `}`},
		{"phone key with prefix joins the same hash", `{"phone":"+79330445040"}`, `{"phone":` + phone + `}`},
		{"phone key, formatted", `{"phone":"8 (933) 044-50-40"}`, `{"phone":` + phone + `}`},
		{"phone key, number", `{"phone":9330445040}`, `{"phone":` + phone + `}`},
		{"phone key, not a Russian number", `{"phone":"12345"}`,
			`{"phone":{"hash":"` + h.Phone("12345") + `","mask":"12*45"}}`},
		{"phone key, escaped digits", `{"phone":"\u0039330445040"}`, `{"phone":` + phone + `}`},
		{"already pseudonymised", `{"phone":` + phone + `}`, `{"phone":` + phone + `}`},
		{"phone key, null", `{"phone":null}`, `{"phone":null}`},
		{"10 digits elsewhere", `{"note":"9330445040"}`, `{"note":"93******40"}`},
		{"11 digits with 7", `{"note":"79330445040"}`, `{"note":"93******40"}`},
		{"11 digits with 8", `["89330445040"]`, `["93******40"]`},
		{"+7 and 10 digits", `{"a":{"b":["+79330445040"]}}`, `{"a":{"b":["93******40"]}}`},
		{"escaped digits elsewhere", `{"note":"\u0039330445040"}`, `{"note":"93******40"}`},
		{"11 digits with 9 kept", `{"n":"99330445040"}`, `{"n":"99330445040"}`},
		{"+8 kept", `{"n":"+89330445040"}`, `{"n":"+89330445040"}`},
		{"9 digits kept", `{"n":"933044504"}`, `{"n":"933044504"}`},
		{"phone inside text kept", `{"n":"call 9330445040"}`, `{"n":"call 9330445040"}`},
		{"numbers kept", `{"amount":9330445040,"term":24}`, `{"amount":9330445040,"term":24}`},
		{"hex hash kept", `{"phone_hash":"` + ph + `","phone_mask":"93******40"}`,
			`{"phone_hash":"` + ph + `","phone_mask":"93******40"}`},
		{"phone-like key kept", `{"9330445040":true}`, `{"9330445040":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pseudonymise([]byte(tt.in), h)
			if err != nil {
				t.Fatalf("Pseudonymise(%s): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("Pseudonymise(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestPseudonymiseEvents runs real event payloads through: an event from a stage that
// leaked a phone comes out without it, a clean one comes out unchanged in value.
func TestPseudonymiseEvents(t *testing.T) {
	h := mustHasher(t)
	leaky := `{"search_id":"` + testSearchID + `","product_type":"loan","phone_number":"9330445040",` +
		`"contact":"+79330445040","amount":300000.00,"term":24}`
	got, err := Pseudonymise([]byte(leaky), h)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"9330445040", "79330445040"} {
		if strings.Contains(string(got), clear) {
			t.Errorf("clear phone %s left in %s", clear, got)
		}
	}
	for typ, p := range samplePayloads(t, testSearchID) {
		got, err := Pseudonymise(p, h)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var e encoder
		want, _ := e.canonicalPayload(p)
		if string(got) != string(want) {
			t.Errorf("%s changed:\n got %s\nwant %s", typ, got, want)
		}
	}
}

func TestPseudonymiseRejects(t *testing.T) {
	if _, err := Pseudonymise([]byte(`{"phone":"9330445040"`), mustHasher(t)); err == nil {
		t.Error("Pseudonymise accepted invalid JSON")
	}
	if _, err := Pseudonymise([]byte(`{}`), nil); err == nil {
		t.Error("Pseudonymise accepted a nil hasher")
	}
}

func TestStageOf(t *testing.T) {
	tests := []struct {
		eventType, payload, want string
	}{
		{events.TypeApplicationReceived, `{}`, StageIngress},
		{events.TypeApplicationScored, `{}`, StageScoring},
		{events.TypeDecisionMade, ``, StageOffers},
		{"loan.application.received.v2", `{}`, StageIngress},
		{events.TypeApplicationFailed, `{"stage":"scoring"}`, StageScoring},
		{events.TypeApplicationFailed, `{"stage":"audit"}`, StageAudit},
		{events.TypeApplicationFailed, `{"stage":"elsewhere"}`, ""},
		{events.TypeApplicationFailed, `{}`, ""},
		{events.TypeApplicationFailed, `not json`, ""},
		{"loan.unknown.v1", `{}`, ""},
		{"loan.application.received.vx", `{}`, ""},
	}
	for _, tt := range tests {
		if got := StageOf(tt.eventType, []byte(tt.payload)); got != tt.want {
			t.Errorf("StageOf(%s, %s) = %q, want %q", tt.eventType, tt.payload, got, tt.want)
		}
	}
}
