package e2e_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// TestOffersFitTheKnownClientsMeans: the known client (income 250 000 ₽, debts 20 000 ₽, a
// salary client: 60% of income) can pay 250 000·0.6 − 20 000 = 130 000 ₽ a month. Scoring's
// approval carries that payment, and no offer shown to Yandex may ask more, whatever rate and
// term the catalog prices it at: for 24 months the approval is 2 683 779.64 ₽ (14.9%), and
// cash-large at 17.9% starts at 25 months (129 398.48 ₽; 24 months would be 133 855.65 ₽).
func TestOffersFitTheKnownClientsMeans(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	for _, term := range []int{12, 24, 36, 84} {
		a := s.post(loan(fmt.Sprintf("e2e-means-%d", term), knownA, 1500000, term))
		if a.status != http.StatusOK || a.body["decision"] != "has_approve" {
			t.Fatalf("%d months: answer %d %s", term, a.status, a.raw)
		}
		for _, o := range offers(t, a) {
			if *o.Payment.Max > 130000_00 {
				t.Errorf("%d months: offer %v over %+v months pays up to %v, above the 130000.00 the client can pay", term, o.Amount, *o.Term, *o.Payment.Max)
			}
		}
	}
	a := s.post(loan("e2e-means-worked", knownA, 3000000, 24))
	got := offers(t, a)
	if len(got) != 2 || got[1].Amount != (partnerapi.MoneyRange{Min: 600000_01, Max: 2683779_64}) || *got[1].Term != (partnerapi.TermRange{Min: 25, Max: 84}) ||
		*got[1].Payment.Max != 129398_48 || *got[0].Term != (partnerapi.TermRange{Min: 5, Max: 60}) || *got[0].Payment.Max != 126035_45 {
		t.Errorf("worked case: %s", a.raw)
	}
}
