package chain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/events"
)

// renderRecords are one application's history, sealed.
func renderRecords(t *testing.T) []Record {
	t.Helper()
	p := samplePayloads(t, testSearchID)
	c, _ := NewChain(0, GenesisHash)
	var recs []Record
	types := []string{
		events.TypeApplicationReceived, events.TypeApplicationScored, events.TypeDecisionMade, events.TypeApplicationFailed,
		events.TypeApplicationReferred, events.TypeUnderwritingDecided, events.TypeOfferClicked,
	}
	for i, typ := range types {
		r, err := c.Append(unsealed(t, typ, testSearchID, uint64(i+1), p[typ]))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	// An event type the table has no summary for, and odd values to show safely.
	r, err := c.Append(Record{
		Time: testTime, EventType: "loan.application.withdrawn.v1", CorrelationID: "c",
		Payload: []byte(`{"why":"changed \"mind\"","note":"x\u001b[31m"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, r)
	// Records are rendered as stored, sealed or not: a terminal escape or a line break in a
	// tampered one must not reach the operator's terminal as such.
	return append(recs, Record{
		Seq: 9, Time: testTime, EventType: events.TypeApplicationFailed, SearchID: "evil\x1b[2J",
		Payload: []byte(`{"stage":"offers","reason":"poison","detail":"line1\nline2 \u001b[2J"}`),
	})
}

func TestRenderTable(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, FormatTable, renderRecords(t)); err != nil {
		t.Fatal(err)
	}
	want := `   SEQ  TIME                      STAGE    EVENT                         SEARCH_ID                             SUMMARY
     1  2026-11-03T10:15:04.124Z  ingress  loan.application.received.v1  6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f  product=loan amount=300000.00 term=24 phone=93******40
     2  2026-11-03T10:15:04.125Z  scoring  loan.application.scored.v1    6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f  outcome=approved approval=pre_approved max=500000.00 reasons=INCOME_OK,BUREAU_B policy=2026.11.1
     3  2026-11-03T10:15:04.126Z  offers   loan.decision.made.v1         6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f  decision=has_approve offers=2 amounts=100000.00..500000.00,50000.00..150000.00 reasons=INCOME_OK
     4  2026-11-03T10:15:04.127Z  scoring  loan.application.failed.v1    6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f  stage=scoring reason=retries_exhausted detail="bureau: timeout after 5s"
     5  2026-11-03T10:15:04.128Z  scoring  loan.application.referred.v1  6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f  suggested=full_approved max=500000.00 reasons=REFER_LARGE_AMOUNT decide_by=2026-11-03T10:16:34Z
     6  2026-11-03T10:15:04.129Z  console  loan.underwriting.decided.v1  6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f  by=ivanova outcome=approved approval=full_approved max=300000.00 reasons=REFER_LARGE_AMOUNT,OFFICER_APPROVED
     7  2026-11-03T10:15:04.130Z  ingress  loan.offer.clicked.v1         6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f  offer=cash-standard channel=web
     8  2026-11-03T10:15:04.123Z  -        loan.application.withdrawn.v1  -                                     payload={"note":"x\u001b[31m","why":"changed \"mind\""}
     9  2026-11-03T10:15:04.123Z  -        loan.application.failed.v1    "evil\x1b[2J"                         stage=offers reason=poison detail="line1\nline2 \x1b[2J"
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderJSONL(t *testing.T) {
	recs := renderRecords(t)
	var b bytes.Buffer
	if err := Render(&b, FormatJSONL, recs[3:4]); err != nil {
		t.Fatal(err)
	}
	want := `{"seq":4,"time":"2026-11-03T10:15:04.127456789Z","event_type":"loan.application.failed.v1",` +
		`"search_id":"6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f","stage":"scoring","correlation_id":"corr-4","source_seq":4,` +
		`"payload":{"deliveries":5,"detail":"bureau: timeout after 5s","event_type":"loan.application.received.v1",` +
		`"failed_at":"2026-11-03T10:15:04.123456789Z","reason":"retries_exhausted","search_id":"6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f","stage":"scoring"},` +
		`"prev_hash":"` + recs[2].Hash + `","hash":"` + recs[3].Hash + `"}` + "\n"
	if got := b.String(); got != want {
		t.Errorf("jsonl:\n got %s\nwant %s", got, want)
	}

	// Every line is a record that still verifies.
	b.Reset()
	if err := Render(&b, FormatJSONL, recs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("%d lines, want %d", len(lines), len(recs))
	}
	v := NewVerifier(0, GenesisHash)
	for _, l := range lines[:len(lines)-1] { // the last record is not sealed
		r, err := ParseRecord([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(r); err != nil {
			t.Error(err)
		}
	}
}

func TestRenderCSV(t *testing.T) {
	recs := renderRecords(t)
	var b bytes.Buffer
	if err := Render(&b, FormatCSV, recs[3:4]); err != nil {
		t.Fatal(err)
	}
	want := "seq,time,event_type,search_id,stage,correlation_id,source_seq,payload,prev_hash,hash\n" +
		`4,2026-11-03T10:15:04.127456789Z,loan.application.failed.v1,6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f,scoring,corr-4,4,` +
		`"{""deliveries"":5,""detail"":""bureau: timeout after 5s"",""event_type"":""loan.application.received.v1"",` +
		`""failed_at"":""2026-11-03T10:15:04.123456789Z"",""reason"":""retries_exhausted"",""search_id"":""6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f"",""stage"":""scoring""}",` +
		recs[2].Hash + "," + recs[3].Hash + "\n"
	if got := b.String(); got != want {
		t.Errorf("csv:\n got %s\nwant %s", got, want)
	}
}

func TestRenderEmpty(t *testing.T) {
	tests := []struct{ format, want string }{
		{FormatTable, "   SEQ  TIME                      STAGE    EVENT                         SEARCH_ID                             SUMMARY\n"},
		{FormatJSONL, ""},
		{FormatCSV, "seq,time,event_type,search_id,stage,correlation_id,source_seq,payload,prev_hash,hash\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := Render(&b, tt.format, nil); err != nil {
			t.Fatal(err)
		}
		if got := b.String(); got != tt.want {
			t.Errorf("%s of no records = %q, want %q", tt.format, got, tt.want)
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	err := Render(&bytes.Buffer{}, "xml", nil)
	if err == nil {
		t.Fatal("Render accepted format xml")
	}
	for _, f := range []string{`"xml"`, FormatTable, FormatJSONL, FormatCSV} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
}

func TestSummaryOfUndecodablePayload(t *testing.T) {
	r := Record{EventType: events.TypeApplicationScored, Payload: json.RawMessage(`{"max_amount":"lots"}`)}
	if got, want := summarise(r), `payload={"max_amount":"lots"}`; got != want {
		t.Errorf("summarise = %s, want %s", got, want)
	}
	long := Record{EventType: "x", Payload: json.RawMessage(`"` + strings.Repeat("д", 100) + `"`)}
	if got := summarise(long); len(got) > len("payload=")+summaryLimit+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("long payload not cut: %s", got)
	}
}

func TestParseRecordMatchesEncodingJSON(t *testing.T) {
	for _, r := range renderRecords(t) {
		b := mustJSON(t, r)
		got, err := ParseRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		var want Record
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(want.Time) || got.Time.Location() != want.Time.Location() {
			t.Errorf("time %v, want %v", got.Time, want.Time)
		}
		got.Time = want.Time
		if string(mustJSON(t, got)) != string(b) || string(got.Payload) != string(want.Payload) {
			t.Errorf("ParseRecord(%s) = %+v, want %+v", b, got, want)
		}
	}
}

func TestParseRecordRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not an object", `[]`},
		{"unknown field", `{"seq":1,"extra":true}`},
		{"repeated field", `{"seq":1,"seq":2}`},
		{"negative seq", `{"seq":-1}`},
		{"fractional seq", `{"seq":1.5}`},
		{"seq overflow", `{"seq":18446744073709551616}`},
		{"bad time", `{"time":"yesterday"}`},
		{"string as number", `{"seq":"1"}`},
		{"bad payload", `{"payload":{"a":}}`},
		{"trailing data", `{"seq":1} x`},
		{"unterminated", `{"seq":1`},
	}
	for _, tt := range tests {
		if _, err := ParseRecord([]byte(tt.in)); err == nil {
			t.Errorf("%s: ParseRecord(%s) accepted it", tt.name, tt.in)
		}
	}
}

// TestSummaryOfDroppedOffers: a decision's summary names the offers the self-check dropped,
// with the checks each failed, and the decision's reason codes, so that a replay shows why an
// answer carries fewer offers than the catalog made, or none; the scored event shows the
// monthly payment the offers were kept within.
func TestSummaryOfDroppedOffers(t *testing.T) {
	made, err := json.Marshal(events.DecisionMade{
		SearchID: testSearchID, ProductType: "credit_card", Decision: "rejected",
		Dropped: []events.DroppedOffer{
			{OfferID: "card-120", Checks: []string{"psk_above_cap"}},
			{OfferID: "card-x", Checks: []string{"range_order", "not_positive"}},
		},
		ReasonCodes: []string{"UNKNOWN_CLIENT", "OFFERS_FAILED_CHECK"},
	})
	if err != nil {
		t.Fatal(err)
	}
	scored, err := json.Marshal(events.ApplicationScored{
		SearchID: testSearchID, ProductType: "loan", Outcome: events.OutcomeApproved, Approval: "full_approved",
		MaxAmount: 2683779_54, MaxPayment: 130000_00, ReasonCodes: []string{"KNOWN_CLIENT"}, PolicyVersion: "p-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ     string
		payload []byte
		want    string
	}{
		{events.TypeDecisionMade, made,
			"decision=rejected offers=0 dropped=card-120:psk_above_cap,card-x:range_order+not_positive reasons=UNKNOWN_CLIENT,OFFERS_FAILED_CHECK"},
		{events.TypeApplicationScored, scored,
			"outcome=approved approval=full_approved max=2683779.54 max_payment=130000.00 reasons=KNOWN_CLIENT policy=p-1"},
	}
	for _, tt := range tests {
		if got := summarise(Record{EventType: tt.typ, Payload: tt.payload}); got != tt.want {
			t.Errorf("%s summary:\n got %s\nwant %s", tt.typ, got, tt.want)
		}
	}
}
