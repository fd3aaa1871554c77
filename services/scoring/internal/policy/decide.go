package policy

import (
	"slices"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/loanmath"
	"github.com/loanflow/loanflow/services/scoring/internal/profile"
)

// Reason codes of a Decision, for the bank's records and the audit; never sent to Yandex.
const (
	ReasonStopList            = "STOP_LIST"             // rejected: the client is on the bank's stop list
	ReasonProductNotSupported = "PRODUCT_NOT_SUPPORTED" // rejected: the product type is neither loan nor credit_card
	ReasonTermOutOfRange      = "TERM_OUT_OF_RANGE"     // rejected: the loan term is missing or outside the policy's range
	ReasonAmountBelowMinimum  = "AMOUNT_BELOW_MINIMUM"  // rejected: the loan amount is missing or below the policy's minimum
	ReasonUnknownClient       = "UNKNOWN_CLIENT"        // pre-approved: the bank has no profile, so the unknown-client limit applies
	ReasonProfileIncomplete   = "PROFILE_INCOMPLETE"    // pre-approved: the profile has no income, so the unknown-client limit applies
	ReasonGradeNotEligible    = "GRADE_NOT_ELIGIBLE"    // rejected: the policy lends nothing at the client's bureau grade
	ReasonDTIExceeded         = "DTI_EXCEEDED"          // rejected: with the new payment, debt-to-income allows less than the minimum
	ReasonKnownClient         = "KNOWN_CLIENT"          // full approval from the client's profile
	ReasonDTIWithinLimit      = "DTI_WITHIN_LIMIT"      // debt-to-income including the new payment is within the policy
	ReasonSalaryClient        = "SALARY_CLIENT"         // the salary client's debt-to-income bonus was applied
	ReasonAmountReduced       = "AMOUNT_REDUCED"        // the requested amount is above MaxAmount, which is what is approved
	ReasonReferAmount         = "REFER_AMOUNT"          // referred: a known client asks more than the underwriting threshold
	ReasonReferGrade          = "REFER_GRADE"           // referred: the client's bureau grade is one an officer decides
)

// GradeUnknown is the grade of a client the bank has no usable data on.
const GradeUnknown = "unknown"

// Application is what scoring needs of an application: no personal data.
type Application struct {
	ProductType partnerapi.ProductType
	// Amount is the requested loan amount or card limit; required for loans.
	Amount *partnerapi.Money
	// Term is the loan term in months; required for loans, ignored for cards.
	Term *int
}

// Decision is the verdict on one application.
type Decision struct {
	Outcome events.Outcome
	// Approval is how firm the approval is; empty when rejected.
	Approval partnerapi.OfferDecision
	// Grade is the bureau grade A–D, or GradeUnknown when the bank has no usable profile.
	Grade string
	// MaxAmount is the largest loan amount or card limit the client qualifies for; 0 when
	// rejected, never above the policy's maximum.
	MaxAmount partnerapi.Money
	// MaxPayment is the largest monthly payment the new credit may take under the policy's
	// debt-to-income limit (income × the DTI share, less current debt payments). Offer
	// assembly keeps every offer's largest payment within it, whatever rate and term the
	// catalog prices the offer at. 0 when rejected, and for a client without income data: no
	// income measures it, and the unknown-client limit is the conservative bound instead.
	MaxPayment    partnerapi.Money
	ReasonCodes   []string
	PolicyVersion string
	// Referral is set when an officer decides instead of the policy; the fields above are then
	// what the policy suggests.
	Referral *Referral
}

// Referral is what an officer decides within, and what applies when none does in time.
type Referral struct {
	// MinAmount and MaxAmount bound the amount an officer may approve: the product's minimum
	// and what the client qualifies for.
	MinAmount, MaxAmount partnerapi.Money
	// Fallback applies when no officer decides within DeadlineShare of the answer deadline.
	Fallback      events.Proposal
	DeadlineShare float64
}

// Decide applies the policy to an application and the client's profile (nil when the bank does
// not know the client). It is pure: the same inputs and policy give the same Decision.
//
// Rules, first match wins: stop list; loan term; loan amount minimum; unknown client or no
// income (pre-approval up to the unknown-client limit); grade not in the policy; debt-to-income
// including the new payment, which sets the largest amount the client qualifies for. A full
// approval an underwriting rule matches comes back with a Referral: an officer decides it.
func (p *Policy) Decide(app Application, client *profile.Profile) Decision {
	known := client != nil && client.MonthlyIncome > 0
	d := Decision{Outcome: events.OutcomeRejected, Grade: GradeUnknown, PolicyVersion: p.version}
	if known {
		d.Grade = client.BureauGrade
	}
	reject := func(code string) Decision {
		d.ReasonCodes = []string{code}
		return d
	}

	if client != nil && client.StopList {
		return reject(ReasonStopList)
	}
	var l limits
	switch app.ProductType {
	case partnerapi.ProductLoan:
		if app.Term == nil || *app.Term < p.loan.termMin || *app.Term > p.loan.termMax {
			return reject(ReasonTermOutOfRange)
		}
		if app.Amount == nil || *app.Amount < p.loan.min {
			return reject(ReasonAmountBelowMinimum)
		}
		l = p.loan.limits
	case partnerapi.ProductCreditCard:
		l = p.card.limits
	default:
		return reject(ReasonProductNotSupported)
	}

	if !known {
		code := ReasonUnknownClient
		if client != nil {
			code = ReasonProfileIncomplete
		}
		return approve(d, partnerapi.OfferPreApproved, l.unknownMax, app.Amount, code)
	}

	g, ok := l.grades[client.BureauGrade]
	if !ok {
		return reject(ReasonGradeNotEligible)
	}
	share := l.maxDTI
	salary := client.SalaryClient && l.salaryDTI > 0
	if salary {
		share += l.salaryDTI
	}
	// What the client can still pay each month, in kopecks, once current debts are served.
	available := int64(min(client.MonthlyIncome, partnerapi.MaxMoney))
	available = mulShare(available, share) - int64(client.MonthlyDebtPayments)

	var affordable int64
	if available > 0 {
		if app.ProductType == partnerapi.ProductLoan {
			affordable = loanmath.MaxPrincipal(available, g.rate, *app.Term)
		} else {
			// The card's assumed payment is a share of the limit: limit = payment / share.
			affordable = available * basis / p.card.minPayment
		}
	}
	qualifying := min(g.max, l.max, partnerapi.Money(affordable))
	if qualifying < l.min {
		return reject(ReasonDTIExceeded)
	}
	codes := []string{ReasonKnownClient, ReasonDTIWithinLimit}
	if salary {
		codes = append(codes, ReasonSalaryClient)
	}
	d = approve(d, partnerapi.OfferFullApproved, qualifying, app.Amount, codes...)
	d.MaxPayment = partnerapi.Money(min(available, int64(partnerapi.MaxMoney)))
	return p.refer(d, app, l)
}

// refer sends a known client's approval to an officer when an underwriting rule matches.
func (p *Policy) refer(d Decision, app Application, l limits) Decision {
	u := p.underwriting
	if u == nil {
		return d
	}
	rule, amount := u.loan, app.Amount
	if app.ProductType == partnerapi.ProductCreditCard {
		rule, amount = u.card, &d.MaxAmount
	}
	if rule == nil {
		return d
	}
	var codes []string
	if amount != nil && *amount > rule.amountAbove {
		codes = append(codes, ReasonReferAmount)
	}
	if slices.Contains(rule.grades, d.Grade) {
		codes = append(codes, ReasonReferGrade)
	}
	if len(codes) == 0 {
		return d
	}
	fallback := events.Proposal{Outcome: events.OutcomeRejected}
	if u.fallback == FallbackPreApprove {
		fallback = events.Proposal{
			Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved,
			Grade: d.Grade, MaxAmount: min(l.unknownMax, d.MaxAmount), MaxPayment: d.MaxPayment,
		}
	}
	d.ReasonCodes = append(d.ReasonCodes, codes...)
	d.Referral = &Referral{
		MinAmount: l.min, MaxAmount: d.MaxAmount, Fallback: fallback,
		DeadlineShare: float64(u.deadlineShare) / basis,
	}
	return d
}

// approve completes d as an approval up to maxAmount, noting when less than requested is
// approved.
func approve(d Decision, approval partnerapi.OfferDecision, maxAmount partnerapi.Money, requested *partnerapi.Money, codes ...string) Decision {
	d.Outcome = events.OutcomeApproved
	d.Approval = approval
	d.MaxAmount = maxAmount
	d.ReasonCodes = codes
	if requested != nil && *requested > maxAmount {
		d.ReasonCodes = append(d.ReasonCodes, ReasonAmountReduced)
	}
	return d
}

// mulShare returns v × bp / 10000 rounded down, without overflowing for any v ≥ 0.
func mulShare(v, bp int64) int64 { return v/basis*bp + v%basis*bp/basis }
