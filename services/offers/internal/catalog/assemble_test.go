package catalog

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/loanmath"
)

func ptr[T any](v T) *T { return &v }

func approved(product partnerapi.ProductType, grade string, max partnerapi.Money) Input {
	return Input{SearchID: "sid-1", ProductType: product, Approved: true,
		Approval: partnerapi.OfferFullApproved, Grade: grade, MaxAmount: max}
}

func link(offerID string) partnerapi.ProposalLink {
	return partnerapi.ProposalLink{
		Link: "https://bank.example/apply?search_id=sid-1&offer=" + offerID,
		Deep: "bank://apply?search_id=sid-1&offer=" + offerID,
	}
}

// yearOffer is the fixture's fee-free 12-month tier at 12% for an approval of 200 000 ₽. The
// monthly rate is 1%, so the annuity of 100 000 ₽ is 100000·0.01/(1−1.01^−12) = 8 884.88 ₽ and
// that of 200 000 ₽ twice as much, 17 769.76 ₽; without fees and with monthly payments the ПСК
// is the nominal rate.
var yearOffer = partnerapi.Offer{
	ProductType:       partnerapi.ProductLoan,
	Decision:          partnerapi.OfferFullApproved,
	Amount:            partnerapi.MoneyRange{Min: 100000_00, Max: 200000_00},
	Term:              &partnerapi.TermRange{Min: 12, Max: 12},
	Rate:              partnerapi.RateRange{Min: 12, Max: 12},
	TotalCost:         partnerapi.RateRange{Min: 12, Max: 12},
	Payment:           partnerapi.Payment{Min: ptr[partnerapi.Money](8884_88), Max: ptr[partnerapi.Money](17769_76)},
	RequiredDocuments: []string{"Паспорт гражданина РФ"},
	ProposalLink:      link("year"),
}

// feeOffer is the fixture's one-month tier at 12% with a 1 000 ₽ fee, for an approval of
// 300 000 ₽. One month at 1% repays 1.01 times the amount: 202 000.01 ₽ for 200 000.01 ₽ and
// 303 000 ₽ for 300 000 ₽. The borrower receives the amount less the fee, so the ПСК is
// 12·100·(repaid/received − 1): 12·100·3000/199000.01 = 18.090 for the smallest amount and
// 12·100·4000/299000 = 16.054 for the largest, both above the 12% rate.
var feeOffer = partnerapi.Offer{
	ProductType:        partnerapi.ProductLoan,
	Decision:           partnerapi.OfferFullApproved,
	Amount:             partnerapi.MoneyRange{Min: 200000_01, Max: 300000_00},
	Term:               &partnerapi.TermRange{Min: 1, Max: 1},
	Rate:               partnerapi.RateRange{Min: 12, Max: 12},
	TotalCost:          partnerapi.RateRange{Min: 16.054, Max: 18.090},
	Payment:            partnerapi.Payment{Min: ptr[partnerapi.Money](202000_01), Max: ptr[partnerapi.Money](303000_00)},
	ChoosableDocuments: []string{"2-НДФЛ, Справка по форме банка"},
	ProposalLink:       link("month-fee"),
}

func TestAssembleWorkedExamples(t *testing.T) {
	c := mustParse(t, fixture)
	with := func(o partnerapi.Offer, change func(*partnerapi.Offer)) partnerapi.Offer {
		change(&o)
		return o
	}
	preApproved := approved(partnerapi.ProductLoan, "A", 200000_00)
	preApproved.Approval = partnerapi.OfferPreApproved
	noApproval := approved(partnerapi.ProductLoan, "A", 200000_00)
	noApproval.Approval = ""
	tests := []struct {
		name string
		in   Input
		want []partnerapi.Offer
	}{
		{"no fee: ПСК is the rate, payments by hand", approved(partnerapi.ProductLoan, "A", 200000_00),
			[]partnerapi.Offer{yearOffer}},
		{"a fee makes the ПСК exceed the rate", approved(partnerapi.ProductLoan, "A", 300000_00),
			[]partnerapi.Offer{yearOffer, feeOffer}},
		{"capped at the catalog's max", approved(partnerapi.ProductLoan, "A", 900000_00),
			[]partnerapi.Offer{yearOffer, feeOffer}},
		{"capped at the approval", approved(partnerapi.ProductLoan, "A", 150000_00),
			[]partnerapi.Offer{with(yearOffer, func(o *partnerapi.Offer) {
				o.Amount.Max = 150000_00
				o.Payment.Max = ptr[partnerapi.Money](13327_32) // 150000·0.01/(1−1.01^−12)
			})}},
		{"grade C", approved(partnerapi.ProductLoan, "C", 200000_00),
			[]partnerapi.Offer{with(yearOffer, func(o *partnerapi.Offer) {
				o.Rate, o.TotalCost = partnerapi.RateRange{Min: 24, Max: 24}, partnerapi.RateRange{Min: 24, Max: 24}
				o.Payment.Min = ptr[partnerapi.Money](9455_96)  // 100000·0.02/(1−1.02^−12)
				o.Payment.Max = ptr[partnerapi.Money](18911_92) // twice that
			})}},
		{"a grade the catalog does not list is priced as unknown", approved(partnerapi.ProductLoan, "D", 200000_00),
			[]partnerapi.Offer{with(yearOffer, func(o *partnerapi.Offer) {
				o.Rate, o.TotalCost = partnerapi.RateRange{Min: 36, Max: 36}, partnerapi.RateRange{Min: 36, Max: 36}
				o.Payment.Min = ptr[partnerapi.Money](10046_21) // 100000·0.03/(1−1.03^−12)
				o.Payment.Max = ptr[partnerapi.Money](20092_42)
			})}},
		{"pre-approved stays pre-approved", preApproved,
			[]partnerapi.Offer{with(yearOffer, func(o *partnerapi.Offer) { o.Decision = partnerapi.OfferPreApproved })}},
		{"no approval given is the weaker promise", noApproval,
			[]partnerapi.Offer{with(yearOffer, func(o *partnerapi.Offer) { o.Decision = partnerapi.OfferPreApproved })}},
		{"card without a fee: ПСК is the rate", approved(partnerapi.ProductCreditCard, "B", 50000_00),
			[]partnerapi.Offer{{
				ProductType:       partnerapi.ProductCreditCard,
				Decision:          partnerapi.OfferFullApproved,
				Amount:            partnerapi.MoneyRange{Min: 10000_00, Max: 50000_00},
				Rate:              partnerapi.RateRange{Min: 24, Max: 36},
				TotalCost:         partnerapi.RateRange{Min: 24, Max: 36},
				GracePeriod:       ptr(55),
				Payment:           partnerapi.Payment{CCRate: ptr(5.0)},
				SpecialConditions: []string{"Кешбэк 1%"},
				ProposalLink:      link("card"),
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decision, got := c.Assemble(tt.in)
			if decision != partnerapi.DecisionHasApprove {
				t.Errorf("decision = %s, want %s", decision, partnerapi.DecisionHasApprove)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("offers:\n got %s\nwant %s", show(got), show(tt.want))
			}
		})
	}
}

// show prints offers with their pointers followed, for readable failures.
func show(offers []partnerapi.Offer) string {
	s := "["
	for _, o := range offers {
		s += fmt.Sprintf("\n  %s amount %v rate %v ПСК %v", o.ProductType, o.Amount, o.Rate, o.TotalCost)
		if o.Term != nil {
			s += fmt.Sprintf(" term %v", *o.Term)
		}
		if o.Payment.Min != nil && o.Payment.Max != nil {
			s += fmt.Sprintf(" payment %s–%s", o.Payment.Min, o.Payment.Max)
		}
		s += fmt.Sprintf(" %s %+v", o.Decision, o.ProposalLink)
	}
	return s + "]"
}

func TestDefaultLoanTiers(t *testing.T) {
	c := mustDefault(t)
	tests := []struct {
		name string
		max  partnerapi.Money
		want []partnerapi.MoneyRange
	}{
		{"200 000 gives one offer", 200000_00, []partnerapi.MoneyRange{{Min: 30000_00, Max: 200000_00}}},
		{"600 000 is the first tier only", 600000_00, []partnerapi.MoneyRange{{Min: 30000_00, Max: 600000_00}}},
		{"600 000.01 reaches the second tier", 600000_01,
			[]partnerapi.MoneyRange{{Min: 30000_00, Max: 600000_00}, {Min: 600000_01, Max: 600000_01}}},
		{"1 000 000 gives two offers split at 600 000/600 000.01", 1000000_00,
			[]partnerapi.MoneyRange{{Min: 30000_00, Max: 600000_00}, {Min: 600000_01, Max: 1000000_00}}},
		{"capped at the catalog's max", 9000000_00,
			[]partnerapi.MoneyRange{{Min: 30000_00, Max: 600000_00}, {Min: 600000_01, Max: 5000000_00}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decision, offers := c.Assemble(approved(partnerapi.ProductLoan, "A", tt.max))
			var got []partnerapi.MoneyRange
			for _, o := range offers {
				got = append(got, o.Amount)
			}
			if decision != partnerapi.DecisionHasApprove || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Assemble = %s %v, want %s %v", decision, got, partnerapi.DecisionHasApprove, tt.want)
			}
		})
	}
}

// TestDefaultPaymentsByHand checks the default catalog's payments for grade A and an approval
// of 100 000 ₽. payment.min: 30 000 ₽ at 14.9% over 60 months, r = 0.149/12 = 0.0124166…,
// 30000·r/(1−(1+r)^−60) = 712.124… ₽. payment.max: 100 000 ₽ at 19.9% over 3 months,
// r = 0.0165833…, 100000·r/(1−(1+r)^−3) = 34 444.949… ₽.
func TestDefaultPaymentsByHand(t *testing.T) {
	_, offers := mustDefault(t).Assemble(approved(partnerapi.ProductLoan, "A", 100000_00))
	if len(offers) != 1 {
		t.Fatalf("%d offers, want 1", len(offers))
	}
	got := [2]partnerapi.Money{*offers[0].Payment.Min, *offers[0].Payment.Max}
	if want := [2]partnerapi.Money{712_12, 34444_95}; got != want {
		t.Errorf("payments = %v, want %v", got, want)
	}
}

// TestDefaultCardScenario spells out the standard usage scenario the card's ПСК is computed
// under: the limit drawn on the day of issue less the 990 ₽ annual fee paid that day, then 12
// equal monthly payments at the card rate. The fee weighs most on the smallest limit at the
// highest rate.
func TestDefaultCardScenario(t *testing.T) {
	_, offers := mustDefault(t).Assemble(approved(partnerapi.ProductCreditCard, GradeUnknown, 50000_00))
	if len(offers) != 1 {
		t.Fatalf("%d offers, want 1", len(offers))
	}
	o := offers[0]
	scenario := func(limit partnerapi.Money, rate float64) float64 {
		flows := []loanmath.Flow{{Q: 0, Amount: -int64(limit) + 990_00}}
		for k, p := range loanmath.Schedule(int64(limit), rate, 12) {
			flows = append(flows, loanmath.Flow{Q: k + 1, Amount: p})
		}
		psk, err := loanmath.PSK(flows, 12)
		if err != nil {
			t.Fatal(err)
		}
		return psk
	}
	want := partnerapi.RateRange{Min: scenario(50000_00, 39.9), Max: scenario(10000_00, 49.9)}
	if o.TotalCost != want {
		t.Errorf("ПСК = %v, want %v", o.TotalCost, want)
	}
	if o.TotalCost.Min <= o.Rate.Min || o.TotalCost.Max <= o.Rate.Max {
		t.Errorf("ПСК %v must exceed the rate %v: the annual fee is a cost of credit", o.TotalCost, o.Rate)
	}
	if o.Amount != (partnerapi.MoneyRange{Min: 10000_00, Max: 50000_00}) || o.Rate != (partnerapi.RateRange{Min: 39.9, Max: 49.9}) {
		t.Errorf("limit %v, rate %v", o.Amount, o.Rate)
	}
}

// TestOfferInvariants checks every offer the default catalog makes, for every grade and a
// spread of approvals, against the contract's rules.
func TestOfferInvariants(t *testing.T) {
	c := mustDefault(t)
	const searchID = "3f1c9a62 5b7e&offer=x/é" // escaping must keep it one query value
	for _, product := range []partnerapi.ProductType{partnerapi.ProductLoan, partnerapi.ProductCreditCard} {
		for _, grade := range []string{"A", "B", "C", GradeUnknown, "Z"} {
			for _, max := range []partnerapi.Money{10000_00, 30000_00, 123456_78, 600000_00, 600000_01, 1000000_00, 7000000_00} {
				in := approved(product, grade, max)
				in.SearchID = searchID
				decision, offers := c.Assemble(in)
				if (decision == partnerapi.DecisionHasApprove) != (len(offers) > 0) {
					t.Fatalf("%s %s %s: decision %s with %d offers", product, grade, max, decision, len(offers))
				}
				for i, o := range offers {
					checkOffer(t, in, o)
					if i > 0 && offers[i-1].Amount.Min > o.Amount.Min {
						t.Errorf("%s %s %s: offers not sorted by amount.min", product, grade, max)
					}
				}
			}
		}
	}
}

func checkOffer(t *testing.T, in Input, o partnerapi.Offer) {
	t.Helper()
	if o.ProductType != in.ProductType || o.Decision != in.Approval {
		t.Errorf("offer %s/%s for a %s %s application", o.ProductType, o.Decision, in.ProductType, in.Approval)
	}
	if o.Amount.Min > o.Amount.Max || o.Amount.Max > in.MaxAmount || o.Rate.Min > o.Rate.Max || o.TotalCost.Min > o.TotalCost.Max {
		t.Errorf("a min exceeds its max, or the amount the approval: %+v", o)
	}
	switch o.ProductType {
	case partnerapi.ProductLoan:
		if o.Term == nil || o.Payment.Min == nil || o.Payment.Max == nil || o.GracePeriod != nil || o.Payment.CCRate != nil {
			t.Fatalf("loan offer needs term and payment.min/max, and no card fields: %+v", o)
		}
		if o.Term.Min > o.Term.Max || *o.Payment.Min > *o.Payment.Max || *o.Payment.Min <= 0 {
			t.Errorf("loan ranges: term %+v, payment %v–%v", *o.Term, *o.Payment.Min, *o.Payment.Max)
		}
		// The default loans have no fees: with monthly payments the ПСК is the nominal rate.
		if o.TotalCost != o.Rate {
			t.Errorf("ПСК %v, want the rate %v", o.TotalCost, o.Rate)
		}
	case partnerapi.ProductCreditCard:
		if o.Term != nil || o.GracePeriod == nil || o.Payment.CCRate == nil || o.Payment.Min != nil || o.Payment.Max != nil {
			t.Fatalf("card offer needs grace_period and cc_rate, and no term or payment.min/max: %+v", o)
		}
		if o.TotalCost.Min <= o.Rate.Min {
			t.Errorf("card ПСК %v must exceed the rate %v with an annual fee", o.TotalCost, o.Rate)
		}
	}
	for _, l := range []string{o.ProposalLink.Link, o.ProposalLink.Deep} {
		u, err := url.Parse(l)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Query().Get("search_id") != in.SearchID {
			t.Errorf("link %q: want an absolute URL carrying search_id %q", l, in.SearchID)
		}
	}
	if !strings.HasPrefix(o.ProposalLink.Link, "https://") {
		t.Errorf("web link %q is not https", o.ProposalLink.Link)
	}
}

func TestAssembleRejects(t *testing.T) {
	c := mustDefault(t)
	notApproved := approved(partnerapi.ProductLoan, "A", 100000_00)
	notApproved.Approved = false
	tests := []struct {
		name string
		in   Input
	}{
		{"rejected by scoring", notApproved},
		{"approved for nothing", approved(partnerapi.ProductLoan, "A", 0)},
		{"below every loan tier", approved(partnerapi.ProductLoan, "A", 29999_99)},
		{"below every card", approved(partnerapi.ProductCreditCard, "A", 9999_99)},
		{"a product the catalog does not sell", approved("mortgage", "A", 1000000_00)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, o := c.Assemble(tt.in); d != partnerapi.DecisionRejected || o != nil {
				t.Errorf("Assemble = %s %v, want %s nil", d, o, partnerapi.DecisionRejected)
			}
		})
	}
	if ReasonNoMatchingProduct != "NO_MATCHING_PRODUCT" {
		t.Errorf("ReasonNoMatchingProduct = %q: audit records depend on the code", ReasonNoMatchingProduct)
	}
}

func TestAssembleIsDeterministic(t *testing.T) {
	c := mustDefault(t)
	in := approved(partnerapi.ProductLoan, "B", 2345678_91)
	_, want := c.Assemble(in)
	var wg sync.WaitGroup
	got := make([][]partnerapi.Offer, 8)
	for i := range got {
		wg.Go(func() { _, got[i] = c.Assemble(in) })
	}
	wg.Wait()
	for i := range got {
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("call %d differs:\n got %s\nwant %s", i, show(got[i]), show(want))
		}
	}
	// An offer is the caller's to change; the catalog is not.
	got[0][1].ChoosableDocuments[0] = "changed"
	_, again := c.Assemble(in)
	if _, fresh := mustDefault(t).Assemble(in); !reflect.DeepEqual(again, fresh) {
		t.Error("changing an offer changed the catalog")
	}
}
