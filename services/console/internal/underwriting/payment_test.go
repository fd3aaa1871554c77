package underwriting

import (
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// An officer's approval keeps the client's affordable payment that scoring suggested, so that
// offer assembly prices the approved amount within the client's means.
func TestApprovalKeepsTheSuggestedPayment(t *testing.T) {
	ev := golden(t)
	ev.Suggested.MaxPayment = 130_000_00
	c, err := Open(ev, "corr-1", "")
	if err != nil {
		t.Fatal(err)
	}
	c, _ = c.Take("ivanova", t0.Add(time.Second))
	c, err = c.Decide("ivanova", Verdict{Approve: true, Approval: partnerapi.OfferPreApproved, Amount: 1_000_000_00, Comment: "ok"}, t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Event()
	if err != nil {
		t.Fatal(err)
	}
	if got.Decision.MaxPayment != 130_000_00 || got.Decision.MaxAmount != 1_000_000_00 {
		t.Errorf("decision %+v, want the officer's 1000000.00 within the suggested payment 130000.00", got.Decision)
	}
}
