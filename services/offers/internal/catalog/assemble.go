package catalog

import (
	"cmp"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/loanmath"
)

// Input is what offer assembly knows of a scored application.
type Input struct {
	SearchID    string
	ProductType partnerapi.ProductType
	// Approved is scoring's outcome; the fields below matter only when it is true.
	Approved bool
	// Approval is how firm the offers are; anything but full_approved is offered as
	// pre_approved, the weaker promise.
	Approval partnerapi.OfferDecision
	// Grade prices the offers: A, B, C or unknown (any other grade is priced as unknown).
	Grade string
	// MaxAmount is the largest loan amount or card limit the client qualifies for.
	MaxAmount partnerapi.Money
	// MaxPayment is the largest monthly payment the client can take on under scoring's
	// debt-to-income limit; every offer's largest payment is kept within it (see fitPayment).
	// 0 sets no payment bound: scoring had no income to measure one against (an unknown
	// client, pre-approved up to the policy's conservative unknown-client limit instead).
	MaxPayment partnerapi.Money
	// Amount and Term are what the client asked for. The offers do not narrow to them: the
	// answer shows every range the client qualifies for, and scoring already checked them.
	Amount *partnerapi.Money
	Term   *int
	// Links turns the catalog's rendered links into those sent to Yandex (signed proposal
	// links); nil sends the rendered templates as they are.
	Links Linker
}

// Linker makes an offer's proposal link for one channel ("web" or "deep") from the catalog's
// rendered template; "" leaves the link out. Declared here, where it is used: offer assembly
// implements it with signed tokens.
type Linker interface {
	Link(offerID, channel, rendered string) string
}

// Assemble returns the answer's decision and the offers that pass the self-check; see Answer.
func (c *Catalog) Assemble(in Input) (partnerapi.Decision, []partnerapi.Offer) {
	r := c.Answer(in)
	return r.Decision, r.Offers
}

// Answer assembles the answer: one offer per loan tier, or per card, whose minimum the approval
// reaches, capped at MaxAmount, sorted by amount.min, each checked before it may leave (see
// check.go); an offer failing a check is dropped and listed in Dropped. A rejection, an approval
// no product fits, or one whose every offer failed, is rejected without offers; the caller
// records ReasonNoMatchingProduct or ReasonOffersFailedCheck for the latter two.
func (c *Catalog) Answer(in Input) Result {
	rejected := Result{Decision: partnerapi.DecisionRejected}
	if !in.Approved || in.MaxAmount <= 0 {
		return rejected
	}
	type made struct {
		id    string
		offer partnerapi.Offer
	}
	var all []made
	switch in.ProductType {
	case partnerapi.ProductLoan:
		for _, p := range c.loans {
			if o, ok := c.loanOffer(p, in); ok {
				all = append(all, made{p.id, o})
			}
		}
	case partnerapi.ProductCreditCard:
		for _, p := range c.cards {
			if o, ok := c.cardOffer(p, in); ok {
				all = append(all, made{p.id, o})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b made) int { return cmp.Compare(a.offer.Amount.Min, b.offer.Amount.Min) })
	offers, ids := make([]partnerapi.Offer, len(all)), make([]string, len(all))
	for i, m := range all {
		offers[i], ids[i] = m.offer, m.id
	}
	kept, dropped := c.check(offers, ids)
	if len(kept) == 0 {
		rejected.Dropped = dropped
		return rejected
	}
	return Result{Decision: partnerapi.DecisionHasApprove, Offers: kept, Dropped: dropped}
}

// loanOffer is tier p's offer, or false when the approval does not reach the tier.
func (c *Catalog) loanOffer(p loanProduct, in Input) (partnerapi.Offer, bool) {
	amount, ok := p.capped(in.MaxAmount)
	if !ok {
		return partnerapi.Offer{}, false
	}
	rate := p.rate(in.Grade)
	amount, term, ok := fitPayment(amount, p.term, rate.max, in.MaxPayment)
	if !ok {
		return partnerapi.Offer{}, false
	}
	// The smallest payment is the smallest loan at the lowest rate over the longest term; the
	// largest is the opposite corner.
	payMin := partnerapi.Money(loanmath.Annuity(int64(amount.Min), rate.min, term.Max))
	payMax := partnerapi.Money(loanmath.Annuity(int64(amount.Max), rate.max, term.Min))
	psk, ok := pskRange(p.fee, amount, rate, term.Min, term.Max)
	if !ok {
		return partnerapi.Offer{}, false // validation rules this out; never send a wrong ПСК
	}
	o := p.offer(c, in, partnerapi.ProductLoan, amount, rate, psk)
	o.Term = &term
	o.Payment = partnerapi.Payment{Min: &payMin, Max: &payMax}
	return o, true
}

// cardOffer is card p's offer, or false when the approval does not reach the card's limit.
func (c *Catalog) cardOffer(p cardProduct, in Input) (partnerapi.Offer, bool) {
	limit, ok := p.capped(in.MaxAmount)
	if !ok {
		return partnerapi.Offer{}, false
	}
	// The card's monthly payment is cc_rate % of the debt; at the full limit it must fit in
	// what the client can pay, as a loan's largest payment must.
	if in.MaxPayment > 0 {
		// limit × cc_rate / 100 ≤ MaxPayment, in kopecks rounded down.
		fit := partnerapi.Money(math.Floor(float64(in.MaxPayment) * 100 / p.ccRate))
		if fit < limit.Min {
			return partnerapi.Offer{}, false
		}
		limit.Max = min(limit.Max, fit)
	}
	rate := p.rate(in.Grade)
	psk, ok := pskRange(p.fee, limit, rate, cardScenarioMonths)
	if !ok {
		return partnerapi.Offer{}, false // validation rules this out; never send a wrong ПСК
	}
	grace, cc := p.gracePeriod, p.ccRate
	o := p.offer(c, in, partnerapi.ProductCreditCard, limit, rate, psk)
	o.GracePeriod = &grace
	o.Payment = partnerapi.Payment{CCRate: &cc}
	return o, true
}

// fitPayment narrows a loan tier so that its largest payment, the annuity of amount.Max at
// rate over term.Min, is at most maxPayment (0: no bound). The amount scoring approved is kept
// where it can be: term.Min rises to the shortest term at which amount.Max fits. When even
// term.Max does not fit it, amount.Max falls to the largest amount that fits over term.Max,
// which becomes the only term. False when that is below amount.Min: the tier cannot be
// offered within the client's means.
func fitPayment(amount partnerapi.MoneyRange, term partnerapi.TermRange, rate float64, maxPayment partnerapi.Money) (partnerapi.MoneyRange, partnerapi.TermRange, bool) {
	if maxPayment <= 0 {
		return amount, term, true
	}
	// The annuity falls as the term grows, so the first term that fits is the shortest.
	for n := term.Min; n <= term.Max; n++ {
		if loanmath.Annuity(int64(amount.Max), rate, n) <= int64(maxPayment) {
			return amount, partnerapi.TermRange{Min: n, Max: term.Max}, true
		}
	}
	fit := partnerapi.Money(loanmath.MaxPrincipal(int64(maxPayment), rate, term.Max))
	if fit < amount.Min {
		return amount, term, false
	}
	return partnerapi.MoneyRange{Min: amount.Min, Max: fit}, partnerapi.TermRange{Min: term.Max, Max: term.Max}, true
}

// capped is p's amount range capped at max, or false when max is below p's minimum.
func (p product) capped(max partnerapi.Money) (partnerapi.MoneyRange, bool) {
	if max < p.amount.Min {
		return partnerapi.MoneyRange{}, false
	}
	return partnerapi.MoneyRange{Min: p.amount.Min, Max: min(p.amount.Max, max)}, true
}

// rate is the rate range for grade, falling back to the unknown client's.
func (p product) rate(grade string) rateRange {
	if r, ok := p.rates[grade]; ok {
		return r
	}
	return p.rates[GradeUnknown]
}

// offer fills what loan and card offers share. The document lists are copies, so that a
// caller changing an offer cannot change the catalog.
func (p product) offer(c *Catalog, in Input, t partnerapi.ProductType, amount partnerapi.MoneyRange, rate rateRange, psk partnerapi.RateRange) partnerapi.Offer {
	decision := partnerapi.OfferPreApproved
	if in.Approval == partnerapi.OfferFullApproved {
		decision = partnerapi.OfferFullApproved
	}
	return partnerapi.Offer{
		ProductType:        t,
		Decision:           decision,
		Amount:             amount,
		Rate:               partnerapi.RateRange{Min: rate.min, Max: rate.max},
		TotalCost:          psk,
		SpecialConditions:  slices.Clone(p.specialConditions),
		RequiredDocuments:  slices.Clone(p.requiredDocuments),
		ChoosableDocuments: slices.Clone(p.choosableDocuments),
		ProposalLink: partnerapi.ProposalLink{
			Link: linked(in.Links, p.id, "web", render(c.web, in.SearchID, p.id)),
			Deep: linked(in.Links, p.id, "deep", render(c.deep, in.SearchID, p.id)),
		},
	}
}

// linked passes a rendered template through the linker; an absent template stays absent.
func linked(l Linker, offerID, channel, rendered string) string {
	if l == nil || rendered == "" {
		return rendered
	}
	return l.Link(offerID, channel, rendered)
}

// pskRange is the least and the greatest ПСК over the corners amount {min, max} × rate {min,
// max} × the terms given, with fee paid when the credit is granted; false when a corner has no
// ПСК. A card passes the scenario's one term, which makes its flows those of the standard usage
// scenario: the limit drawn on the day of issue and repaid as a 12-month annuity.
func pskRange(fee partnerapi.Money, amount partnerapi.MoneyRange, rate rateRange, terms ...int) (partnerapi.RateRange, bool) {
	out := partnerapi.RateRange{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, a := range []partnerapi.Money{amount.Min, amount.Max} {
		for _, r := range []float64{rate.min, rate.max} {
			for _, n := range terms {
				psk, err := loanmath.PSK(loanmath.LoanFlows(int64(a), int64(fee), r, n), 12)
				if err != nil {
					return partnerapi.RateRange{}, false
				}
				out.Min, out.Max = min(out.Min, psk), max(out.Max, psk)
			}
		}
	}
	return out, true
}

// render fills a link template; an empty template stays empty, so the link is left out.
func render(tmpl, searchID, offerID string) string {
	if tmpl == "" {
		return ""
	}
	return strings.NewReplacer(
		"{search_id}", url.QueryEscape(searchID),
		"{offer_id}", url.QueryEscape(offerID),
	).Replace(tmpl)
}
