package catalog

import (
	"math"
	"slices"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// Codes of the self-check, recorded with every dropped offer.
const (
	CheckMissingField  = "missing_field"  // a field the product type requires is absent
	CheckRangeOrder    = "range_order"    // a range's min is above its max
	CheckNotPositive   = "not_positive"   // an amount, term or payment is zero or negative
	CheckPSKBelowRate  = "psk_below_rate" // the ПСК is below the nominal rate
	CheckPSKAboveCap   = "psk_above_cap"  // the ПСК is above the catalog's cap for the product type
	CheckAmountOverlap = "amount_overlap" // the amount range overlaps an earlier offer's
)

// ReasonOffersFailedCheck is recorded when approved offers were made but every one failed the
// self-check, so that the answer to Yandex is a rejection.
const ReasonOffersFailedCheck = "OFFERS_FAILED_CHECK"

// pskTolerance absorbs the rounding of ПСК and rates to three decimals.
const pskTolerance = 0.0005

// Dropped is an offer the self-check kept out of the answer, and why.
type Dropped struct {
	OfferID string
	Checks  []string
}

// Result is an answer as assembled and checked.
type Result struct {
	Decision partnerapi.Decision
	// Offers are those that passed the self-check, sorted by amount.min.
	Offers []partnerapi.Offer
	// Dropped are those that did not; they never reach Yandex.
	Dropped []Dropped
}

// check runs the self-check on offers sorted by amount.min (ids[i] is offers[i]'s product id):
// what passes is kept, in order; what fails is returned with every check it failed.
func (c *Catalog) check(offers []partnerapi.Offer, ids []string) ([]partnerapi.Offer, []Dropped) {
	var kept []partnerapi.Offer
	var dropped []Dropped
	for i, o := range offers {
		failed := c.checkOffer(o)
		// Overlap is judged against what is kept, so one bad offer does not take its
		// neighbours with it.
		for _, k := range kept {
			if k.ProductType == o.ProductType && o.Amount.Min <= k.Amount.Max && k.Amount.Min <= o.Amount.Max {
				failed = append(failed, CheckAmountOverlap)
				break
			}
		}
		if len(failed) > 0 {
			dropped = append(dropped, Dropped{OfferID: ids[i], Checks: failed})
			continue
		}
		kept = append(kept, o)
	}
	return kept, dropped
}

// checkOffer returns the codes of the checks one offer fails, each once, in a fixed order.
func (c *Catalog) checkOffer(o partnerapi.Offer) []string {
	var failed []string
	fail := func(code string) {
		if !slices.Contains(failed, code) {
			failed = append(failed, code)
		}
	}
	if !o.ProductType.Valid() || (o.Decision != partnerapi.OfferPreApproved && o.Decision != partnerapi.OfferFullApproved) ||
		(o.ProposalLink.Link == "" && o.ProposalLink.Deep == "") {
		fail(CheckMissingField)
	}
	finite := func(r partnerapi.RateRange) bool {
		return !math.IsNaN(r.Min) && !math.IsNaN(r.Max) && !math.IsInf(r.Min, 0) && !math.IsInf(r.Max, 0)
	}
	if !finite(o.Rate) || !finite(o.TotalCost) {
		fail(CheckMissingField)
	}
	if o.Amount.Min > o.Amount.Max || o.Rate.Min > o.Rate.Max || o.TotalCost.Min > o.TotalCost.Max {
		fail(CheckRangeOrder)
	}
	if o.Amount.Min <= 0 || o.Rate.Min < 0 {
		fail(CheckNotPositive)
	}
	switch o.ProductType {
	case partnerapi.ProductLoan:
		switch {
		case o.Term == nil || o.Payment.Min == nil || o.Payment.Max == nil:
			fail(CheckMissingField)
		default:
			if o.Term.Min > o.Term.Max || *o.Payment.Min > *o.Payment.Max {
				fail(CheckRangeOrder)
			}
			if o.Term.Min <= 0 || *o.Payment.Min <= 0 {
				fail(CheckNotPositive)
			}
		}
	case partnerapi.ProductCreditCard:
		switch {
		case o.GracePeriod == nil || o.Payment.CCRate == nil:
			fail(CheckMissingField)
		case *o.GracePeriod < 0 || *o.Payment.CCRate <= 0:
			fail(CheckNotPositive)
		}
	}
	if o.TotalCost.Min < o.Rate.Min-pskTolerance || o.TotalCost.Max < o.Rate.Max-pskTolerance {
		fail(CheckPSKBelowRate)
	}
	if cap, ok := c.pskCap[o.ProductType]; !ok || o.TotalCost.Max > cap {
		fail(CheckPSKAboveCap)
	}
	return failed
}
