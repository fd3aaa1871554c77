// Package catalog is the bank's product catalog and the arithmetic that turns an approval into
// the partner API's offers: amount and term ranges, rates by grade, monthly annuity payments
// in kopecks, the ПСК by Federal Law 353-FZ, card terms, documents and proposal links. It has
// no NATS or HTTP in it and is deterministic.
package catalog

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/loanmath"
)

//go:embed default.yaml
var defaultYAML []byte

// ReasonNoMatchingProduct is recorded when scoring approved but no product of the catalog fits
// the approval (for example a limit below every product's minimum): the answer is a rejection.
const ReasonNoMatchingProduct = "NO_MATCHING_PRODUCT"

// GradeUnknown prices clients the bank has no data on.
const GradeUnknown = "unknown"

// Grades every product must price.
var Grades = []string{"A", "B", "C", GradeUnknown}

// CardScenarioMonths is the repayment period of the standard usage scenario a card's ПСК is
// computed under (see default.yaml).
const CardScenarioMonths = 12

// Catalog is a validated product catalog. It is read-only and safe for concurrent use.
type Catalog struct {
	version  string
	bankName string
	web      string
	deep     string
	loans    []loanProduct
	cards    []cardProduct
}

type rateRange struct{ min, max float64 }

type loanProduct struct {
	id                 string
	amountMin          partnerapi.Money
	amountMax          partnerapi.Money
	termMin, termMax   int
	rates              map[string]rateRange
	issueFee           partnerapi.Money
	requiredDocuments  []string
	choosableDocuments []string
	specialConditions  []string
}

type cardProduct struct {
	id                 string
	limitMin, limitMax partnerapi.Money
	gracePeriod        int
	ccRate             float64
	annualFee          partnerapi.Money
	rates              map[string]rateRange
	requiredDocuments  []string
	choosableDocuments []string
	specialConditions  []string
}

// Default returns the built-in catalog (default.yaml).
func Default() (*Catalog, error) { return Parse("default.yaml", defaultYAML) }

// Load reads and validates a catalog file.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Parse(path, data)
}

// Version is the catalog's version, recorded with every decision.
func (c *Catalog) Version() string { return c.version }

// BankName is the legal name sent in every final answer.
func (c *Catalog) BankName() string { return c.bankName }

// Input is what offer assembly knows of a scored application.
type Input struct {
	SearchID    string
	ProductType partnerapi.ProductType
	// Approved is scoring's outcome; the rest matters only when it is true.
	Approved bool
	Approval partnerapi.OfferDecision
	// Grade prices the offer: A, B, C or unknown (anything else is priced as unknown).
	Grade string
	// MaxAmount is the largest loan amount or card limit the client qualifies for.
	MaxAmount partnerapi.Money
	Amount    *partnerapi.Money
	Term      *int
}

// Assemble returns the answer's decision and offers. A rejection, or an approval no product
// fits, is (rejected, nil).
func (c *Catalog) Assemble(in Input) (partnerapi.Decision, []partnerapi.Offer) {
	if !in.Approved || in.MaxAmount <= 0 {
		return partnerapi.DecisionRejected, nil
	}
	approval := in.Approval
	if approval != partnerapi.OfferFullApproved {
		approval = partnerapi.OfferPreApproved
	}
	var offers []partnerapi.Offer
	switch in.ProductType {
	case partnerapi.ProductLoan:
		for _, p := range c.loans {
			if p.amountMin <= in.MaxAmount {
				offers = append(offers, c.loanOffer(p, in, approval))
			}
		}
	case partnerapi.ProductCreditCard:
		for _, p := range c.cards {
			if p.limitMin <= in.MaxAmount {
				offers = append(offers, c.cardOffer(p, in, approval))
			}
		}
	}
	if len(offers) == 0 {
		return partnerapi.DecisionRejected, nil
	}
	sort.SliceStable(offers, func(i, j int) bool { return offers[i].Amount.Min < offers[j].Amount.Min })
	return partnerapi.DecisionHasApprove, offers
}

func rateFor(rates map[string]rateRange, grade string) rateRange {
	if r, ok := rates[grade]; ok {
		return r
	}
	return rates[GradeUnknown]
}

func (c *Catalog) loanOffer(p loanProduct, in Input, approval partnerapi.OfferDecision) partnerapi.Offer {
	amount := partnerapi.MoneyRange{Min: p.amountMin, Max: min(p.amountMax, in.MaxAmount)}
	term := partnerapi.TermRange{Min: p.termMin, Max: p.termMax}
	rate := rateFor(p.rates, in.Grade)
	payMin := partnerapi.Money(loanmath.Annuity(int64(amount.Min), rate.min, term.Max))
	payMax := partnerapi.Money(loanmath.Annuity(int64(amount.Max), rate.max, term.Min))
	// The ПСК over the offer's corners: fees weigh most on the smallest, shortest loan.
	pskMin, pskMax := math.Inf(1), math.Inf(-1)
	for _, a := range []partnerapi.Money{amount.Min, amount.Max} {
		for _, r := range []float64{rate.min, rate.max} {
			for _, n := range []int{term.Min, term.Max} {
				psk := loanPSK(a, p.issueFee, r, n)
				pskMin, pskMax = math.Min(pskMin, psk), math.Max(pskMax, psk)
			}
		}
	}
	return partnerapi.Offer{
		ProductType:        partnerapi.ProductLoan,
		Decision:           approval,
		Amount:             amount,
		Term:               &term,
		Rate:               partnerapi.RateRange{Min: rate.min, Max: rate.max},
		TotalCost:          partnerapi.RateRange{Min: pskMin, Max: pskMax},
		Payment:            partnerapi.Payment{Min: &payMin, Max: &payMax},
		SpecialConditions:  p.specialConditions,
		RequiredDocuments:  p.requiredDocuments,
		ChoosableDocuments: p.choosableDocuments,
		ProposalLink:       c.link(in.SearchID, p.id),
	}
}

func (c *Catalog) cardOffer(p cardProduct, in Input, approval partnerapi.OfferDecision) partnerapi.Offer {
	limit := partnerapi.MoneyRange{Min: p.limitMin, Max: min(p.limitMax, in.MaxAmount)}
	rate := rateFor(p.rates, in.Grade)
	pskMin, pskMax := math.Inf(1), math.Inf(-1)
	for _, l := range []partnerapi.Money{limit.Min, limit.Max} {
		for _, r := range []float64{rate.min, rate.max} {
			psk := CardPSK(l, p.annualFee, r)
			pskMin, pskMax = math.Min(pskMin, psk), math.Max(pskMax, psk)
		}
	}
	grace, cc := p.gracePeriod, p.ccRate
	return partnerapi.Offer{
		ProductType:        partnerapi.ProductCreditCard,
		Decision:           approval,
		Amount:             limit,
		Rate:               partnerapi.RateRange{Min: rate.min, Max: rate.max},
		TotalCost:          partnerapi.RateRange{Min: pskMin, Max: pskMax},
		GracePeriod:        &grace,
		Payment:            partnerapi.Payment{CCRate: &cc},
		SpecialConditions:  p.specialConditions,
		RequiredDocuments:  p.requiredDocuments,
		ChoosableDocuments: p.choosableDocuments,
		ProposalLink:       c.link(in.SearchID, p.id),
	}
}

// loanPSK is the ПСК of an annuity loan with a fee paid when it is granted. Validation makes
// sure the flows always have one (a positive rate and term), so the error cannot occur.
func loanPSK(amount, fee partnerapi.Money, rate float64, months int) float64 {
	psk, err := loanmath.PSK(loanmath.LoanFlows(int64(amount), int64(fee), rate, months), 12)
	if err != nil {
		return rate
	}
	return psk
}

// CardPSK is a card's ПСК under the standard usage scenario: the whole limit spent on the day
// of issue outside the grace period, repaid in CardScenarioMonths equal monthly payments at the
// card rate, the annual fee paid on the day of issue.
func CardPSK(limit, annualFee partnerapi.Money, rate float64) float64 {
	return loanPSK(limit, annualFee, rate, CardScenarioMonths)
}

// link renders the proposal links for one offer.
func (c *Catalog) link(searchID, offerID string) partnerapi.ProposalLink {
	return partnerapi.ProposalLink{Link: render(c.web, searchID, offerID), Deep: render(c.deep, searchID, offerID)}
}

func render(tmpl, searchID, offerID string) string {
	if tmpl == "" {
		return ""
	}
	return strings.NewReplacer("{search_id}", url.QueryEscape(searchID), "{offer_id}", url.QueryEscape(offerID)).Replace(tmpl)
}

// checkLink reports what is wrong with a link template, rendered with a sample search_id.
func checkLink(tmpl string, web bool) error {
	if !strings.Contains(tmpl, "{search_id}") {
		return errors.New("must contain {search_id}")
	}
	u, err := url.Parse(render(tmpl, "00000000-0000-4000-8000-000000000000", "product"))
	if err != nil {
		return fmt.Errorf("is not a URL: %v", err)
	}
	switch {
	case web && (u.Scheme != "https" || u.Host == ""):
		return errors.New("must be an absolute https URL")
	case !web && (u.Scheme == "" || u.Scheme == "http" || u.Scheme == "https"):
		return errors.New("must be an absolute app URL (scheme://...)")
	}
	return nil
}
