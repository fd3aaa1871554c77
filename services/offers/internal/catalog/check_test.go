package catalog

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// cardOffer is the fixture card's offer to a grade A client, the base the table below breaks.
func cardOffer(t *testing.T) partnerapi.Offer {
	t.Helper()
	_, offers := mustParse(t, fixture).Assemble(approved(partnerapi.ProductCreditCard, "A", 100000_00))
	if len(offers) != 1 {
		t.Fatalf("fixture card: %d offers", len(offers))
	}
	return offers[0]
}

func TestCheckOffer(t *testing.T) {
	c := mustParse(t, fixture)
	loan := func(edit func(*partnerapi.Offer)) partnerapi.Offer {
		o := yearOffer
		term, lo, hi := *o.Term, *o.Payment.Min, *o.Payment.Max
		o.Term, o.Payment.Min, o.Payment.Max = &term, &lo, &hi
		edit(&o)
		return o
	}
	card := func(edit func(*partnerapi.Offer)) partnerapi.Offer {
		o := cardOffer(t)
		edit(&o)
		return o
	}
	tests := []struct {
		name  string
		offer partnerapi.Offer
		want  []string
	}{
		{"a good loan", loan(func(*partnerapi.Offer) {}), nil},
		{"a good card", card(func(*partnerapi.Offer) {}), nil},
		{"loan without term", loan(func(o *partnerapi.Offer) { o.Term = nil }), []string{CheckMissingField}},
		{"loan without payment.max", loan(func(o *partnerapi.Offer) { o.Payment.Max = nil }), []string{CheckMissingField}},
		{"card without grace period", card(func(o *partnerapi.Offer) { o.GracePeriod = nil }), []string{CheckMissingField}},
		{"card without cc_rate", card(func(o *partnerapi.Offer) { o.Payment.CCRate = nil }), []string{CheckMissingField}},
		{"no link at all", loan(func(o *partnerapi.Offer) { o.ProposalLink = partnerapi.ProposalLink{} }), []string{CheckMissingField}},
		{"unknown product type", loan(func(o *partnerapi.Offer) { o.ProductType = "mortgage" }), []string{CheckMissingField, CheckPSKAboveCap}},
		{"no decision", loan(func(o *partnerapi.Offer) { o.Decision = "" }), []string{CheckMissingField}},
		{"ПСК not a number", loan(func(o *partnerapi.Offer) { o.TotalCost.Max = math.NaN() }), []string{CheckMissingField}},
		{"amount min above max", loan(func(o *partnerapi.Offer) { o.Amount.Min = o.Amount.Max + 1 }), []string{CheckRangeOrder}},
		{"rate min above max", loan(func(o *partnerapi.Offer) { o.Rate.Min, o.TotalCost.Min = 13, 13 }), []string{CheckRangeOrder}},
		{"term min above max", loan(func(o *partnerapi.Offer) { o.Term.Min = 13 }), []string{CheckRangeOrder}},
		{"payment min above max", loan(func(o *partnerapi.Offer) { *o.Payment.Min = *o.Payment.Max + 1 }), []string{CheckRangeOrder}},
		{"zero amount", loan(func(o *partnerapi.Offer) { o.Amount.Min = 0 }), []string{CheckNotPositive}},
		{"zero payment", loan(func(o *partnerapi.Offer) { *o.Payment.Min = 0 }), []string{CheckNotPositive}},
		{"zero term", loan(func(o *partnerapi.Offer) { o.Term.Min = 0 }), []string{CheckNotPositive}},
		{"zero cc_rate", card(func(o *partnerapi.Offer) { *o.Payment.CCRate = 0 }), []string{CheckNotPositive}},
		{"ПСК below the rate", loan(func(o *partnerapi.Offer) { o.TotalCost.Min = 11.9 }), []string{CheckPSKBelowRate}},
		{"ПСК equal to the rate after rounding", loan(func(o *partnerapi.Offer) { o.TotalCost.Min = 11.9996 }), nil},
		{"ПСК above the law's cap", loan(func(o *partnerapi.Offer) { o.TotalCost.Max = 292.001 }), []string{CheckPSKAboveCap}},
		{"several checks at once", loan(func(o *partnerapi.Offer) { o.Amount.Min, o.TotalCost.Min = 0, 1 }),
			[]string{CheckNotPositive, CheckPSKBelowRate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.checkOffer(tt.offer); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("checkOffer = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckDropsOverlapsAgainstWhatIsKept(t *testing.T) {
	c := mustParse(t, fixture)
	a, b, bad, d := yearOffer, yearOffer, yearOffer, yearOffer
	b.Amount = partnerapi.MoneyRange{Min: 200000_00, Max: 250000_00} // touches a's max: overlaps
	bad.Amount = partnerapi.MoneyRange{Min: 200000_01, Max: 300000_00}
	bad.TotalCost.Min = 1                                            // fails on its own
	d.Amount = partnerapi.MoneyRange{Min: 200000_01, Max: 400000_00} // would overlap bad, which is dropped
	kept, dropped := c.check([]partnerapi.Offer{a, b, bad, d}, []string{"a", "b", "bad", "d"})
	if len(kept) != 2 || kept[0].Amount != a.Amount || kept[1].Amount != d.Amount {
		t.Errorf("kept %+v, want a and d", kept)
	}
	want := []Dropped{{"b", []string{CheckAmountOverlap}}, {"bad", []string{CheckPSKBelowRate}}}
	if !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped %+v, want %+v", dropped, want)
	}
	// A card and a loan never overlap each other.
	card := cardOffer(t)
	card.Amount = a.Amount
	if kept, dropped := c.check([]partnerapi.Offer{a, card}, []string{"a", "card"}); len(kept) != 2 || dropped != nil {
		t.Errorf("a loan and a card: kept %d, dropped %+v", len(kept), dropped)
	}
}

func TestAnswerDropsOffersAboveTheCap(t *testing.T) {
	// The fixture card's ПСК reaches 36% for grade A: a 30% card cap drops it, the loans stay.
	capped := mustParse(t, edit(t, "loans:\n", "psk_caps: {loan: 40, credit_card: 30}\nloans:\n"))
	r := capped.Answer(approved(partnerapi.ProductCreditCard, "A", 100000_00))
	if r.Decision != partnerapi.DecisionRejected || r.Offers != nil {
		t.Errorf("card above its cap: %+v, want a rejection without offers", r)
	}
	if want := []Dropped{{"card", []string{CheckPSKAboveCap}}}; !reflect.DeepEqual(r.Dropped, want) {
		t.Errorf("dropped %+v, want %+v", r.Dropped, want)
	}
	// The one-month tier's fee puts its ПСК at 18.090: a 15% loan cap drops it and keeps the
	// fee-free tier.
	loanCap := mustParse(t, edit(t, "loans:\n", "psk_caps: {loan: 15}\nloans:\n"))
	r = loanCap.Answer(approved(partnerapi.ProductLoan, "A", 300000_00))
	if r.Decision != partnerapi.DecisionHasApprove || len(r.Offers) != 1 || r.Offers[0].Amount != yearOffer.Amount {
		t.Errorf("loans under a 15%% cap: %+v", r)
	}
	if len(r.Dropped) != 1 || r.Dropped[0].OfferID != "month-fee" || !slices.Equal(r.Dropped[0].Checks, []string{CheckPSKAboveCap}) {
		t.Errorf("dropped %+v, want month-fee above the cap", r.Dropped)
	}
}

func TestPSKCapsAreValidated(t *testing.T) {
	for _, caps := range []string{"{loan: 0}", "{credit_card: 300}", "{loan: -1}"} {
		data := edit(t, "loans:\n", "psk_caps: "+caps+"\nloans:\n")
		if _, err := Parse("catalog.yaml", []byte(data)); err == nil || !strings.HasPrefix(err.Error(), "catalog.yaml:6: psk_caps.") {
			t.Errorf("psk_caps %s: error %v, want one naming line 6 and the cap", caps, err)
		}
	}
	if _, err := Parse("catalog.yaml", []byte(edit(t, "loans:\n", "psk_caps: {mortgage: 10}\nloans:\n"))); err == nil {
		t.Error("an unknown product category is accepted")
	}
}

// TestAnswerProperties sweeps random approvals against the default catalog: the offers of one
// answer never overlap, each passes the self-check, the ПСК is never below the rate, and
// nothing the default catalog makes is dropped.
func TestAnswerProperties(t *testing.T) {
	c := mustDefault(t)
	r := rand.New(rand.NewPCG(5, 6))
	grades := []string{"A", "B", "C", GradeUnknown}
	products := []partnerapi.ProductType{partnerapi.ProductLoan, partnerapi.ProductCreditCard}
	for range 2000 {
		in := approved(products[r.IntN(2)], grades[r.IntN(4)], partnerapi.Money(1+r.Int64N(6_000_000_00)))
		res := c.Answer(in)
		if len(res.Dropped) > 0 {
			t.Fatalf("%+v: the default catalog made offers the check drops: %+v", in, res.Dropped)
		}
		for i, o := range res.Offers {
			if failed := c.checkOffer(o); failed != nil {
				t.Errorf("%+v: offer %d fails %v", in, i, failed)
			}
			if o.TotalCost.Min < o.Rate.Min || o.TotalCost.Max < o.Rate.Max {
				t.Errorf("%+v: ПСК %+v below the rate %+v", in, o.TotalCost, o.Rate)
			}
			if i > 0 && o.Amount.Min <= res.Offers[i-1].Amount.Max {
				t.Errorf("%+v: offers %d and %d overlap: %+v, %+v", in, i-1, i, res.Offers[i-1].Amount, o.Amount)
			}
		}
	}
}
