package chain

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/pseudonym"
)

const testSearchID = "6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f"

var testTime = time.Date(2026, 11, 3, 10, 15, 4, 123456789, time.UTC)

func mustHasher(tb testing.TB) *pseudonym.Hasher {
	tb.Helper()
	h, err := pseudonym.New([]byte("0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// samplePayloads are one event of each type for one application, as the stages publish them.
func samplePayloads(tb testing.TB, searchID string) map[string][]byte {
	tb.Helper()
	amount, limit, term := partnerapi.Money(300000_00), partnerapi.Money(500000_00), 24
	return map[string][]byte{
		events.TypeApplicationReceived: mustJSON(tb, events.ApplicationReceived{
			SearchID: searchID, ProductType: partnerapi.ProductLoan,
			PhoneHash: mustHasher(tb).Phone("9330445040"), PhoneMask: pseudonym.Mask("9330445040"),
			Amount: &amount, Term: &term, Fingerprint: "9f86d081884c7d659a2feaa0c55ad015",
			ReceivedAt: testTime,
		}),
		events.TypeApplicationScored: mustJSON(tb, events.ApplicationScored{
			SearchID: searchID, ProductType: partnerapi.ProductLoan, Amount: &amount, Term: &term,
			Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "B",
			MaxAmount: limit, ReasonCodes: []string{"INCOME_OK", "BUREAU_B"},
			PolicyVersion: "2026.11.1", ScoredAt: testTime,
		}),
		events.TypeDecisionMade: mustJSON(tb, events.DecisionMade{
			SearchID: searchID, ProductType: partnerapi.ProductLoan,
			Decision: partnerapi.DecisionHasApprove,
			Offers: []partnerapi.Offer{
				{ProductType: partnerapi.ProductLoan, Decision: partnerapi.OfferPreApproved,
					Amount:       partnerapi.MoneyRange{Min: 100000_00, Max: 500000_00},
					Rate:         partnerapi.RateRange{Min: 19.9, Max: 24.9},
					ProposalLink: partnerapi.ProposalLink{Link: "https://bank.example/apply?sid=1&exp=1767225600"}},
				{ProductType: partnerapi.ProductLoan, Decision: partnerapi.OfferPreApproved,
					Amount:       partnerapi.MoneyRange{Min: 50000_00, Max: 150000_00},
					Rate:         partnerapi.RateRange{Min: 25.9, Max: 29.9},
					ProposalLink: partnerapi.ProposalLink{Link: "https://bank.example/apply?sid=2"}},
			},
			ReasonCodes: []string{"INCOME_OK"}, PolicyVersion: "2026.11.1",
			CatalogVersion: "cat-7", DecidedAt: testTime,
		}),
		events.TypeApplicationFailed: mustJSON(tb, events.ApplicationFailed{
			SearchID: searchID, Stage: StageScoring, Reason: events.ReasonRetriesExhausted,
			Detail: "bureau: timeout after 5s", EventType: events.TypeApplicationReceived,
			Deliveries: 5, FailedAt: testTime,
		}),
		events.TypeApplicationReferred: mustJSON(tb, events.ApplicationReferred{
			SearchID: searchID, ProductType: partnerapi.ProductLoan, Amount: &amount, Term: &term,
			PhoneHash: mustHasher(tb).Phone("9330445040"), PhoneMask: pseudonym.Mask("9330445040"),
			Suggested: events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "B", MaxAmount: limit},
			MinAmount: 30000_00, MaxAmount: limit,
			Fallback:    events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "B", MaxAmount: amount},
			ReasonCodes: []string{"REFER_LARGE_AMOUNT"}, PolicyVersion: "2026.11.1",
			ReceivedAt: testTime, ReferredAt: testTime, DecideBy: testTime.Add(90 * time.Second),
		}),
		events.TypeUnderwritingDecided: mustJSON(tb, events.UnderwritingDecided{
			SearchID: searchID, ProductType: partnerapi.ProductLoan, Amount: &amount, Term: &term,
			Decision:  events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "B", MaxAmount: amount},
			DecidedBy: "ivanova", ReasonCodes: []string{"REFER_LARGE_AMOUNT", "OFFICER_APPROVED"},
			PolicyVersion: "2026.11.1", DecidedAt: testTime,
		}),
		events.TypeOfferClicked: mustJSON(tb, events.OfferClicked{
			SearchID: searchID, OfferID: "cash-standard", Channel: "web",
			ExpiresAt: testTime.Add(24 * time.Hour), ClickedAt: testTime,
		}),
	}
}

// unsealed returns the record the audit adapter would build for one event.
func unsealed(tb testing.TB, eventType, searchID string, sourceSeq uint64, payload []byte) Record {
	tb.Helper()
	return Record{
		Time:          testTime.Add(time.Duration(sourceSeq) * time.Millisecond),
		EventType:     eventType,
		SearchID:      searchID,
		Stage:         StageOf(eventType, payload),
		CorrelationID: fmt.Sprintf("corr-%d", sourceSeq),
		SourceSeq:     sourceSeq,
		Payload:       payload,
	}
}

// buildChain returns n sealed records from genesis, cycling through the event types of
// applications whose pipeline succeeds (received, scored, decision made).
func buildChain(tb testing.TB, n int) []Record {
	tb.Helper()
	c, err := NewChain(0, GenesisHash)
	if err != nil {
		tb.Fatal(err)
	}
	types := []string{events.TypeApplicationReceived, events.TypeApplicationScored, events.TypeDecisionMade}
	var payloads map[string][]byte
	recs := make([]Record, 0, n)
	for i := range n {
		if i%len(types) == 0 {
			payloads = samplePayloads(tb, fmt.Sprintf("%08d-8d4b-4c1a-9e2f-0a1b2c3d4e5f", i/len(types)))
		}
		t := types[i%len(types)]
		var sid struct {
			SearchID string `json:"search_id"`
		}
		if err := json.Unmarshal(payloads[t], &sid); err != nil {
			tb.Fatal(err)
		}
		r, err := c.Append(unsealed(tb, t, sid.SearchID, uint64(i+1), payloads[t]))
		if err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}
