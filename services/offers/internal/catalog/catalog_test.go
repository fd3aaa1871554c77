package catalog

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

func mustDefault(t *testing.T) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatalf("default catalog: %v", err)
	}
	return c
}

func approved(product partnerapi.ProductType, grade string, max partnerapi.Money) Input {
	term := 24
	return Input{SearchID: "3f1c9a62-5b7e-4d2a", ProductType: product, Approved: true,
		Approval: partnerapi.OfferFullApproved, Grade: grade, MaxAmount: max, Term: &term}
}

func TestAssembleLoanTiers(t *testing.T) {
	c := mustDefault(t)
	tests := []struct {
		name       string
		max        partnerapi.Money
		wantRanges []partnerapi.MoneyRange
	}{
		{"one tier", 200000_00, []partnerapi.MoneyRange{{Min: 30000_00, Max: 200000_00}}},
		{"exactly the first tier", 600000_00, []partnerapi.MoneyRange{{Min: 30000_00, Max: 600000_00}}},
		{"split at 600000.00/600000.01", 1000000_00, []partnerapi.MoneyRange{{Min: 30000_00, Max: 600000_00}, {Min: 600000_01, Max: 1000000_00}}},
		{"capped by the catalog", 9000000_00, []partnerapi.MoneyRange{{Min: 30000_00, Max: 600000_00}, {Min: 600000_01, Max: 5000000_00}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decision, offers := c.Assemble(approved(partnerapi.ProductLoan, "A", tt.max))
			if decision != partnerapi.DecisionHasApprove {
				t.Fatalf("decision = %s", decision)
			}
			var got []partnerapi.MoneyRange
			for _, o := range offers {
				got = append(got, o.Amount)
				checkLoanOffer(t, o)
			}
			if !reflect.DeepEqual(got, tt.wantRanges) {
				t.Errorf("ranges = %v, want %v", got, tt.wantRanges)
			}
		})
	}
}

func checkLoanOffer(t *testing.T, o partnerapi.Offer) {
	t.Helper()
	if o.ProductType != partnerapi.ProductLoan || o.Decision != partnerapi.OfferFullApproved {
		t.Errorf("offer type/decision %s/%s", o.ProductType, o.Decision)
	}
	if o.Term == nil || o.Payment.Min == nil || o.Payment.Max == nil || o.GracePeriod != nil || o.Payment.CCRate != nil {
		t.Fatalf("loan offer fields wrong: %+v", o)
	}
	if o.Amount.Min > o.Amount.Max || o.Term.Min > o.Term.Max || o.Rate.Min > o.Rate.Max ||
		o.TotalCost.Min > o.TotalCost.Max || *o.Payment.Min > *o.Payment.Max {
		t.Errorf("a min exceeds its max: %+v", o)
	}
	// No fees and monthly periods: the ПСК is the nominal rate.
	if o.TotalCost != o.Rate {
		t.Errorf("ПСК %v, want the nominal rate %v without fees", o.TotalCost, o.Rate)
	}
	for _, l := range []string{o.ProposalLink.Link, o.ProposalLink.Deep} {
		u, err := url.Parse(l)
		if err != nil || u.Scheme == "" || u.Query().Get("search_id") != "3f1c9a62-5b7e-4d2a" {
			t.Errorf("link %q: want an absolute URL carrying the search_id", l)
		}
	}
}

func TestLoanPaymentsByHand(t *testing.T) {
	c := mustDefault(t)
	_, offers := c.Assemble(approved(partnerapi.ProductLoan, "A", 100000_00))
	o := offers[0]
	// payment.min: 30 000 ₽ at 14.9% over 60 months: r = 0.0124166…,
	// 30000·r/(1−(1+r)^−60) = 712.124… ₽. payment.max: 100 000 ₽ at 19.9% over 3 months:
	// r = 0.0165833…, 100000·r/(1−(1+r)^−3) = 34 444.949… ₽ (both computed by hand, rounded
	// to kopecks).
	if *o.Payment.Min != 712_12 || *o.Payment.Max != 34444_95 {
		t.Errorf("payments = %v / %v, want 712.12 / 34444.95", *o.Payment.Min, *o.Payment.Max)
	}
}

func TestAssembleCard(t *testing.T) {
	c := mustDefault(t)
	decision, offers := c.Assemble(approved(partnerapi.ProductCreditCard, "unknown", 50000_00))
	if decision != partnerapi.DecisionHasApprove || len(offers) != 1 {
		t.Fatalf("%s %v", decision, offers)
	}
	o := offers[0]
	if o.Term != nil || o.GracePeriod == nil || *o.GracePeriod != 120 || o.Payment.CCRate == nil || *o.Payment.CCRate != 3 ||
		o.Payment.Min != nil || o.Payment.Max != nil {
		t.Errorf("card offer fields: %+v", o)
	}
	if o.Amount != (partnerapi.MoneyRange{Min: 10000_00, Max: 50000_00}) || o.Rate != (partnerapi.RateRange{Min: 39.9, Max: 49.9}) {
		t.Errorf("card limit/rate: %+v / %+v", o.Amount, o.Rate)
	}
	// The annual fee makes the ПСК exceed the rate, most on the smallest limit.
	if !(o.TotalCost.Min > o.Rate.Min && o.TotalCost.Max > o.Rate.Max && o.TotalCost.Min <= o.TotalCost.Max) {
		t.Errorf("card ПСК %v against rate %v", o.TotalCost, o.Rate)
	}
}

func TestCardPSKScenario(t *testing.T) {
	// Without a fee the scenario is a 12-month annuity: the ПСК equals the rate.
	if got := CardPSK(100000_00, 0, 29.9); got != 29.9 {
		t.Errorf("CardPSK without fee = %v, want 29.9", got)
	}
	if CardPSK(10000_00, 990_00, 29.9) <= CardPSK(1000000_00, 990_00, 29.9) {
		t.Error("a fixed fee must cost more on a smaller limit")
	}
}

func TestAssembleRejections(t *testing.T) {
	c := mustDefault(t)
	for _, in := range []Input{
		{ProductType: partnerapi.ProductLoan, Approved: false, MaxAmount: 100000_00},
		approved(partnerapi.ProductLoan, "A", 1000_00),         // below every tier
		approved(partnerapi.ProductCreditCard, "A", 5000_00),   // below every card
		approved(partnerapi.ProductType("mortgage"), "A", 1e9), // not in the catalog
	} {
		if d, o := c.Assemble(in); d != partnerapi.DecisionRejected || o != nil {
			t.Errorf("Assemble(%+v) = %s %v, want rejected nil", in, d, o)
		}
	}
}

func TestAssembleIsDeterministic(t *testing.T) {
	c := mustDefault(t)
	in := approved(partnerapi.ProductLoan, "B", 2345678_91)
	_, a := c.Assemble(in)
	_, b := c.Assemble(in)
	if !reflect.DeepEqual(a, b) {
		t.Error("two calls with the same input differ")
	}
}

func TestParseErrorsNameFileLineAndRule(t *testing.T) {
	good := string(defaultYAML)
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", strings.Replace(good, "issue_fee: 0\n", "issue_fee: 0\n    colour: red\n", 1), "catalog.yaml:35: unknown key colour"},
		{"min above max", strings.Replace(good, "amount: {min: 30000, max: 600000}", "amount: {min: 700000, max: 600000}", 1), "catalog.yaml:27: loans[0].amount.min must not exceed max"},
		{"overlapping tiers", strings.Replace(good, "min: 600000.01", "min: 500000", 1), "overlaps loan cash-standard"},
		{"bad money", strings.Replace(good, "issue_fee: 0", "issue_fee: 1.234", 1), "catalog.yaml:34: \"1.234\" is not an amount"},
		{"missing grade", strings.Replace(good, "      unknown: {min: 24.9, max: 34.9}\n", "", 1), "loans[0].rates.unknown needs min and max"},
		{"http link", strings.Replace(good, "https://loanflow.example", "http://loanflow.example", 1), "links.web must be an absolute https URL"},
		{"no version", strings.Replace(good, `version: "2026-11.1"`, "", 1), "version is required"},
		{"not yaml", "loans: [", "catalog.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("catalog.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
