package catalog

import (
	"fmt"
	"math"
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

// pskByHand solves the 353-FZ art. 6 equation for monthly base periods, Σ ДПk/(1+i)^k = 0, by
// plain bisection, and returns ПСК = i × 12 × 100 rounded to three decimals. It is written
// here, apart from loanmath, so that the worked examples below do not check the code with
// itself: flows are the borrower's cash flows in kopecks, month by month from the day of
// issue (negative what the borrower receives).
func pskByHand(flows []float64) float64 {
	npv := func(i float64) float64 {
		v, d := 0.0, 1.0
		for _, f := range flows {
			v += f * d
			d /= 1 + i
		}
		return v
	}
	lo, hi := 0.0, 1.0 // 0% to 1200% a year; the NPV falls as i grows
	for range 200 {
		mid := (lo + hi) / 2
		if npv(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Round((lo+hi)/2*12*100*1000) / 1000
}

// monthly is the flows of credit of amount kopecks less a fee paid on the day of issue, then
// eleven payments of pay and a last one of last.
func monthly(amount, fee, pay, last float64) []float64 {
	flows := []float64{-(amount - fee)}
	for range 11 {
		flows = append(flows, pay)
	}
	return append(flows, last)
}

// TestPSKWorkedExamples checks the ПСК of a card with a fee under the standard usage scenario
// and of a loan with a fee against constants derived outside the code under test. The
// payments are by hand: the annuity A = S·r/(1−(1+r)^−12) rounded to a kopeck, each month's
// interest on the balance rounded to a kopeck, and the last payment whatever balance and
// interest remain. The ПСК constants solve Σ ДПk/(1+i)^k = 0 for those flows (a 50-digit
// decimal bisection, run separately; pskByHand above must agree), ПСК = 1200·i:
//
//   - default card, unknown client, limit 50 000 ₽ at 39.9% (r = 0.03325), 990 ₽ annual fee:
//     the client gets 49 010 ₽ and pays 11 × 5 121.05 ₽ and 5 121.06 ₽; i = 0.0366476…,
//     ПСК 43.977 (the offer's least: largest limit, lowest rate);
//   - the same card at 10 000 ₽ and 49.9% (r = 0.0415833…): 9 010 ₽ received, 11 × 1 075.33 ₽
//     and 1 075.36 ₽; i = 0.0601096…, ПСК 72.132 (the offer's greatest);
//   - a 12-month loan at 12% (r = 0.01) with a 2 000 ₽ issue fee: 100 000 ₽ gives 98 000 ₽,
//     11 × 8 884.88 ₽ and 8 884.85 ₽, i = 0.0132121…, ПСК 15.854; 200 000 ₽ gives 198 000 ₽,
//     11 × 17 769.76 ₽ and 17 769.72 ₽, i = 0.0115943…, ПСК 13.913.
func TestPSKWorkedExamples(t *testing.T) {
	const (
		cardLeast, cardGreatest = 43.977, 72.132
		loanLarge, loanSmall    = 13.913, 15.854
	)
	for _, tt := range []struct {
		name  string
		flows []float64
		want  float64
	}{
		{"card 50 000 at 39.9%", monthly(50000_00, 990_00, 5121_05, 5121_06), cardLeast},
		{"card 10 000 at 49.9%", monthly(10000_00, 990_00, 1075_33, 1075_36), cardGreatest},
		{"loan 100 000 at 12%", monthly(100000_00, 2000_00, 8884_88, 8884_85), loanSmall},
		{"loan 200 000 at 12%", monthly(200000_00, 2000_00, 17769_76, 17769_72), loanLarge},
	} {
		if got := pskByHand(tt.flows); got != tt.want {
			t.Errorf("%s: ПСК by hand %.3f, want %.3f: the constant or the flows are wrong", tt.name, got, tt.want)
		}
	}

	_, cards := mustDefault(t).Assemble(approved(partnerapi.ProductCreditCard, GradeUnknown, 50000_00))
	if len(cards) != 1 {
		t.Fatalf("%d card offers, want 1", len(cards))
	}
	if o := cards[0]; o.Amount != (partnerapi.MoneyRange{Min: 10000_00, Max: 50000_00}) || o.Rate != (partnerapi.RateRange{Min: 39.9, Max: 49.9}) ||
		o.TotalCost != (partnerapi.RateRange{Min: cardLeast, Max: cardGreatest}) {
		t.Errorf("card limit %v rate %v ПСК %v, want ПСК %v–%v", o.Amount, o.Rate, o.TotalCost, cardLeast, cardGreatest)
	}

	fee := mustParse(t, edit(t, "    required_documents: [\"Паспорт гражданина РФ\"]\n  - id: month-fee",
		"    required_documents: [\"Паспорт гражданина РФ\"]\n    issue_fee: 2000\n  - id: month-fee"))
	_, loans := fee.Assemble(approved(partnerapi.ProductLoan, "A", 200000_00))
	if len(loans) != 1 {
		t.Fatalf("%d loan offers, want 1", len(loans))
	}
	if o := loans[0]; o.TotalCost != (partnerapi.RateRange{Min: loanLarge, Max: loanSmall}) || o.Rate != (partnerapi.RateRange{Min: 12, Max: 12}) {
		t.Errorf("loan with a fee: rate %v ПСК %v, want ПСК %v–%v", o.Rate, o.TotalCost, loanLarge, loanSmall)
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

// TestPaymentWithinMeansWorkedCase is the end-to-end suite's known client: income 250 000 ₽,
// debts 20 000 ₽, a salary client (60% of income), a 24-month loan. Scoring leaves
// 250 000·0.6 − 20 000 = 130 000 ₽ a month and approves 2 683 779.64 ₽: the largest amount whose
// payment at 14.9% over 24 months rounds to at most 130 000.00 ₽ (the closed form gives
// 2 683 779.54 ₽; the payment's rounding to a kopeck admits ten kopecks more).
// Priced by the catalog at grade A, the offers' largest payments must fit in 130 000 ₽:
//   - cash-standard, 600 000 ₽ at 19.9% (r = 0.0165833…): 600000·r/(1−(1+r)^−n) is
//     156 269.89 ₽ for n = 4 and 126 035.45 ₽ for n = 5, so its terms start at 5 months;
//   - cash-large, 2 683 779.64 ₽ at 17.9% (r = 0.0149166…): 133 855.65 ₽ for n = 24 and
//     129 398.48 ₽ for n = 25, so its terms start at 25 months (the 12-month corner would be
//     245 921 ₽, almost twice what the client can pay).
//
// payment.min is unchanged: 30 000 ₽ at 14.9% over 60 months, 712.12 ₽, and 600 000.01 ₽ at
// 12.9% over 84 months, 10 882.59 ₽.
func TestPaymentWithinMeansWorkedCase(t *testing.T) {
	in := approved(partnerapi.ProductLoan, "A", 2683779_64)
	in.MaxPayment = 130000_00
	_, offers := mustDefault(t).Assemble(in)
	type figures struct {
		amount         partnerapi.MoneyRange
		term           partnerapi.TermRange
		payMin, payMax partnerapi.Money
	}
	var got []figures
	for _, o := range offers {
		got = append(got, figures{o.Amount, *o.Term, *o.Payment.Min, *o.Payment.Max})
	}
	want := []figures{
		{partnerapi.MoneyRange{Min: 30000_00, Max: 600000_00}, partnerapi.TermRange{Min: 5, Max: 60}, 712_12, 126035_45},
		{partnerapi.MoneyRange{Min: 600000_01, Max: 2683779_64}, partnerapi.TermRange{Min: 25, Max: 84}, 10882_59, 129398_48},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("offers = %+v\nwant     %+v", got, want)
	}
}

// TestPaymentWithinMeansFallsBackToAmount: when even a tier's longest term cannot carry its
// amount.max, the amount falls to what the payment repays over that term. 10 000 ₽ a month at
// grade A: cash-standard's 600 000 ₽ at 19.9% over 60 months would be 15 862.96 ₽, so its
// amount.max becomes the principal 10 000 ₽ a month repays over 60 months at 19.9%:
// 10000·(1−(1+r)^−60)/r = 378 239.53 ₽, and since the payment is rounded to a kopeck, up to
// 378 239.72 ₽ (payment 10 000.0049 ₽ → 10 000.00; 378 239.73 ₽ gives 10 000.0052 → 10 000.01).
// 60 months is then the only term. cash-large would need 600 000.01 ₽ over 84 months at 17.9%,
// 12 575.56 ₽: it is not offered.
func TestPaymentWithinMeansFallsBackToAmount(t *testing.T) {
	in := approved(partnerapi.ProductLoan, "A", 1000000_00)
	in.MaxPayment = 10000_00
	_, offers := mustDefault(t).Assemble(in)
	if len(offers) != 1 {
		t.Fatalf("%d offers, want cash-standard only: %s", len(offers), show(offers))
	}
	o := offers[0]
	if o.Amount != (partnerapi.MoneyRange{Min: 30000_00, Max: 378239_72}) || *o.Term != (partnerapi.TermRange{Min: 60, Max: 60}) || *o.Payment.Max > 10000_00 {
		t.Errorf("offer amount %v term %+v payment.max %v", o.Amount, *o.Term, *o.Payment.Max)
	}
}

// TestCardLimitWithinMeans: a card's payment is cc_rate (3%) of the debt, so 1 500 ₽ a month
// carries a limit of at most 1500/0.03 = 50 000 ₽, and 299.99 ₽ none of the 10 000 ₽ minimum.
func TestCardLimitWithinMeans(t *testing.T) {
	c := mustDefault(t)
	in := approved(partnerapi.ProductCreditCard, "A", 1000000_00)
	in.MaxPayment = 1500_00
	if _, offers := c.Assemble(in); len(offers) != 1 || offers[0].Amount.Max != 50000_00 {
		t.Errorf("offers %s, want one card up to 50 000", show(offers))
	}
	in.MaxPayment = 299_99
	if d, offers := c.Assemble(in); d != partnerapi.DecisionRejected || len(offers) != 0 {
		t.Errorf("Assemble = %s %s, want rejected: no card fits 299.99 a month", d, show(offers))
	}
}

// policyGrades restates scoring's default policy (services/scoring/internal/policy/
// default.yaml): the rate it prices a grade's new loan at and the grade's largest loan. Scoring
// approves up to the principal the monthly payment left repays at that rate over the requested
// term; the catalog prices the same approval at its own rates over its own terms.
var policyGrades = map[string]struct {
	rate float64
	max  partnerapi.Money
}{"A": {14.9, 5000000_00}, "B": {19.9, 3000000_00}, "C": {27.9, 1000000_00}}

// TestPaymentWithinMeansSweep sweeps grades × what the client can pay a month × requested
// terms over the default catalog, with the approval scoring's rule gives: every loan offer's
// payment.max is within the payment, payment.min and .max are the corners of the offer's own
// ranges, a narrowed term starts at the shortest term that fits, and a tier is left out only
// when no amount of it fits.
func TestPaymentWithinMeansSweep(t *testing.T) {
	c := mustDefault(t)
	n := 0
	for grade, g := range policyGrades {
		for _, pay := range []partnerapi.Money{800_00, 2500_00, 10000_00, 40000_00, 130000_00, 400000_00, 5000000_00} {
			for _, term := range []int{3, 6, 12, 24, 36, 60, 84} {
				maxAmount := min(g.max, partnerapi.Money(loanmath.MaxPrincipal(int64(pay), g.rate, term)))
				if maxAmount < 30000_00 {
					continue // scoring rejects it: DTI_EXCEEDED
				}
				in := approved(partnerapi.ProductLoan, grade, maxAmount)
				in.MaxPayment, in.Term = pay, ptr(term)
				_, offers := c.Assemble(in)
				byMin := map[partnerapi.Money]partnerapi.Offer{}
				for _, o := range offers {
					byMin[o.Amount.Min] = o
				}
				for _, p := range c.loans {
					rate := p.rate(grade)
					o, offered := byMin[p.amount.Min]
					if !offered {
						// Left out: the approval does not reach the tier, or even its smallest
						// amount over its longest term costs more than the client can pay.
						if p.amount.Min <= maxAmount && loanmath.Annuity(int64(p.amount.Min), rate.max, p.term.Max) <= int64(pay) {
							t.Errorf("%s %v/month %d months: tier %s left out though its minimum fits", grade, pay, term, p.id)
						}
						continue
					}
					n++
					checkOffer(t, in, o)
					if *o.Payment.Max > pay {
						t.Errorf("%s %v/month %d months: %s payment.max %v above the %v the client can pay", grade, pay, term, p.id, *o.Payment.Max, pay)
					}
					if want := partnerapi.Money(loanmath.Annuity(int64(o.Amount.Max), o.Rate.Max, o.Term.Min)); *o.Payment.Max != want {
						t.Errorf("%s: payment.max %v, want the corner %v", p.id, *o.Payment.Max, want)
					}
					if want := partnerapi.Money(loanmath.Annuity(int64(o.Amount.Min), o.Rate.Min, o.Term.Max)); *o.Payment.Min != want {
						t.Errorf("%s: payment.min %v, want the corner %v", p.id, *o.Payment.Min, want)
					}
					if o.Term.Min < p.term.Min || o.Term.Max != p.term.Max {
						t.Errorf("%s: term %+v outside the tier's %+v", p.id, *o.Term, p.term)
					}
					// A narrowed term is the shortest that fits: one month less would not.
					if o.Term.Min > p.term.Min && loanmath.Annuity(int64(o.Amount.Max), rate.max, o.Term.Min-1) <= int64(pay) {
						t.Errorf("%s %v/month: term starts at %d, but %d months fit", p.id, pay, o.Term.Min, o.Term.Min-1)
					}
					// The approved amount is cut only when the longest term cannot carry it.
					if want := min(maxAmount, p.amount.Max); o.Amount.Max < want && loanmath.Annuity(int64(want), rate.max, p.term.Max) <= int64(pay) {
						t.Errorf("%s %v/month: amount.max %v cut below %v, which fits over %d months", p.id, pay, o.Amount.Max, want, p.term.Max)
					}
				}
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d offers checked: the sweep does not exercise the catalog", n)
	}
}
