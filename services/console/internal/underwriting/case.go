// Package underwriting is the manual underwriting case of one referred application and its
// state machine: open → taken (by one officer) → decided (by that officer, or by the policy's
// fallback at DecideBy). It does no I/O: the console stores a Case in the underwriting bucket
// and applies each transition with compare-and-swap on the stored revision, so that two
// officers racing for one case see one winner and the other the error of this package.
package underwriting

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// State is where a case stands.
type State string

// Case states. Decided is final.
const (
	StateOpen    State = "open"
	StateTaken   State = "taken"
	StateDecided State = "decided"
)

// Reason codes the console adds to the referral's.
const (
	ReasonOfficerApproved = "OFFICER_APPROVED"
	ReasonOfficerRejected = "OFFICER_REJECTED"
	ReasonFallback        = "UNDERWRITING_FALLBACK"
)

// MaxComment bounds an officer's comment, in characters.
const MaxComment = 500

// Errors of the transitions. ErrTaken and ErrDecided are what the losing officer sees.
var (
	ErrTaken    = errors.New("the case is taken by another officer")
	ErrDecided  = errors.New("the case is already decided")
	ErrNotTaken = errors.New("take the case before deciding it")
	ErrExpired  = errors.New("the time to decide has run out: the policy's fallback applies")
	ErrNotDue   = errors.New("the fallback is not due yet")
	ErrInvalid  = errors.New("invalid decision")
)

// What makes a verdict invalid; each wraps ErrInvalid.
var (
	ErrBadApproval     = fmt.Errorf("%w: choose full_approved or pre_approved", ErrInvalid)
	ErrBadAmount       = fmt.Errorf("%w: the amount is outside the policy's bounds", ErrInvalid)
	ErrNoComment       = fmt.Errorf("%w: a comment is required", ErrInvalid)
	ErrLongComment     = fmt.Errorf("%w: the comment is longer than %d characters", ErrInvalid, MaxComment)
	ErrPersonalComment = fmt.Errorf("%w: the comment must not hold phone or document numbers", ErrInvalid)
)

// Case is one referred application under manual underwriting, as the bucket stores it. It
// holds no personal data in clear: the phone only as its keyed hash and mask.
type Case struct {
	SearchID      string                 `json:"search_id"`
	ProductType   partnerapi.ProductType `json:"product_type"`
	Amount        *partnerapi.Money      `json:"amount,omitempty"`
	Term          *int                   `json:"term,omitempty"`
	PhoneHash     string                 `json:"phone_hash"`
	PhoneMask     string                 `json:"phone_mask"`
	Client        *events.ClientFigures  `json:"client,omitempty"`
	Suggested     events.Proposal        `json:"suggested"`
	MinAmount     partnerapi.Money       `json:"min_amount"`
	MaxAmount     partnerapi.Money       `json:"max_amount"`
	Fallback      events.Proposal        `json:"fallback"`
	ReasonCodes   []string               `json:"reason_codes"`
	PolicyVersion string                 `json:"policy_version"`
	ReceivedAt    time.Time              `json:"received_at"`
	ReferredAt    time.Time              `json:"referred_at"`
	DecideBy      time.Time              `json:"decide_by"`
	// CorrelationID and TraceParent come from the referral, for the decided event.
	CorrelationID string `json:"correlation_id,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"`

	State   State     `json:"state"`
	TakenBy string    `json:"taken_by,omitempty"`
	TakenAt time.Time `json:"taken_at,omitzero"`
	// TakeAnnounced records that loan.underwriting.taken.v1 was published for the take. A take
	// whose publish failed stands; the event is owed, and is published before the decided one.
	TakeAnnounced bool `json:"take_announced,omitempty"`
	// Decision is set once the case is decided.
	Decision *Decision `json:"decision,omitempty"`
	// Announced records that loan.underwriting.decided.v1 was published for the decision.
	Announced bool `json:"announced,omitempty"`
}

// Decision is how a case was decided.
type Decision struct {
	// By is the officer's login, or events.DecidedByFallback.
	By       string          `json:"by"`
	Proposal events.Proposal `json:"proposal"`
	Comment  string          `json:"comment,omitempty"`
	At       time.Time       `json:"at"`
}

// Open makes the open case of a referral, or says why the referral cannot be a case (an
// error that no retry cures).
func Open(ev events.ApplicationReferred, correlationID, traceParent string) (Case, error) {
	var errs []error
	if ev.SearchID == "" {
		errs = append(errs, errors.New("no search_id"))
	}
	if !ev.ProductType.Valid() {
		errs = append(errs, fmt.Errorf("unknown product_type %q", ev.ProductType))
	}
	if ev.DecideBy.IsZero() {
		errs = append(errs, errors.New("no decide_by"))
	}
	if ev.MinAmount < 0 || ev.MaxAmount < ev.MinAmount {
		errs = append(errs, fmt.Errorf("bounds %s..%s are not a range", ev.MinAmount, ev.MaxAmount))
	}
	if err := validProposal(ev.Fallback); err != nil {
		errs = append(errs, fmt.Errorf("fallback: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return Case{}, fmt.Errorf("referral %s: %w", ev.SearchID, err)
	}
	return Case{
		SearchID: ev.SearchID, ProductType: ev.ProductType, Amount: ev.Amount, Term: ev.Term,
		PhoneHash: ev.PhoneHash, PhoneMask: ev.PhoneMask, Client: ev.Client,
		Suggested: ev.Suggested, MinAmount: ev.MinAmount, MaxAmount: ev.MaxAmount, Fallback: ev.Fallback,
		ReasonCodes: slices.Clone(ev.ReasonCodes), PolicyVersion: ev.PolicyVersion,
		ReceivedAt: ev.ReceivedAt, ReferredAt: ev.ReferredAt, DecideBy: ev.DecideBy,
		CorrelationID: correlationID, TraceParent: traceParent,
		State: StateOpen,
	}, nil
}

func validProposal(p events.Proposal) error {
	switch p.Outcome {
	case events.OutcomeRejected:
		return nil
	case events.OutcomeApproved:
		if p.Approval != partnerapi.OfferPreApproved && p.Approval != partnerapi.OfferFullApproved {
			return fmt.Errorf("approval %q", p.Approval)
		}
		if p.MaxAmount <= 0 {
			return errors.New("approved without an amount")
		}
		return nil
	}
	return fmt.Errorf("outcome %q", p.Outcome)
}

// Take gives the case to officer. Taking a case one already holds changes nothing.
func (c Case) Take(officer string, now time.Time) (Case, error) {
	switch {
	case officer == "" || officer == events.DecidedByFallback:
		return c, fmt.Errorf("%w: no officer", ErrInvalid)
	case c.State == StateDecided:
		return c, ErrDecided
	case c.State == StateTaken && c.TakenBy == officer:
		return c, nil
	case c.State == StateTaken:
		return c, ErrTaken
	case !now.Before(c.DecideBy):
		return c, ErrExpired
	}
	c.State, c.TakenBy, c.TakenAt = StateTaken, officer, now.UTC()
	return c, nil
}

// Verdict is what an officer decides.
type Verdict struct {
	// Approve approves with Approval and Amount; otherwise the application is rejected.
	Approve  bool
	Approval partnerapi.OfferDecision
	// Amount is the loan amount or card limit approved, within the referral's bounds.
	Amount  partnerapi.Money
	Comment string
}

// Decide records officer's verdict. Only the officer holding the case decides it, and only
// before DecideBy.
func (c Case) Decide(officer string, v Verdict, now time.Time) (Case, error) {
	switch {
	case c.State == StateDecided:
		return c, ErrDecided
	case c.State == StateOpen:
		return c, ErrNotTaken
	case c.TakenBy != officer:
		return c, ErrTaken
	case !now.Before(c.DecideBy):
		return c, ErrExpired
	}
	comment := strings.TrimSpace(v.Comment)
	if err := validComment(comment); err != nil {
		return c, err
	}
	p := events.Proposal{Outcome: events.OutcomeRejected}
	if v.Approve {
		if v.Approval != partnerapi.OfferFullApproved && v.Approval != partnerapi.OfferPreApproved {
			return c, ErrBadApproval
		}
		if v.Amount < c.MinAmount || v.Amount > c.MaxAmount || v.Amount <= 0 {
			return c, fmt.Errorf("%w (%s..%s)", ErrBadAmount, c.MinAmount, c.MaxAmount)
		}
		// The officer chooses the amount, not the client's means: offers stay within the
		// monthly payment the policy found the client can take on.
		p = events.Proposal{Outcome: events.OutcomeApproved, Approval: v.Approval, Grade: c.grade(), MaxAmount: v.Amount, MaxPayment: c.Suggested.MaxPayment}
	}
	c.State = StateDecided
	c.Decision = &Decision{By: officer, Proposal: p, Comment: comment, At: now.UTC()}
	return c, nil
}

// validComment requires a reason and keeps personal data out: a run of ten or more digits
// looks like a phone or a document number.
func validComment(s string) error {
	if s == "" {
		return ErrNoComment
	}
	if utf8.RuneCountInString(s) > MaxComment {
		return ErrLongComment
	}
	run := 0
	for _, r := range s {
		if unicode.IsDigit(r) {
			run++
			if run >= 10 {
				return ErrPersonalComment
			}
		} else if r != ' ' && r != '-' && r != '(' && r != ')' && r != '+' {
			run = 0
		}
	}
	return nil
}

// grade prices an officer's approval: the suggested proposal's grade, else the fallback's.
func (c Case) grade() string {
	if c.Suggested.Grade != "" {
		return c.Suggested.Grade
	}
	return c.Fallback.Grade
}

// ApplyFallback decides the case by the policy's fallback once DecideBy has come, whether or
// not an officer holds it.
func (c Case) ApplyFallback(now time.Time) (Case, error) {
	if c.State == StateDecided {
		return c, ErrDecided
	}
	if now.Before(c.DecideBy) {
		return c, ErrNotDue
	}
	c.State = StateDecided
	c.Decision = &Decision{By: events.DecidedByFallback, Proposal: c.Fallback, At: now.UTC()}
	return c, nil
}

// MarkAnnounced records that the decided event was published.
func (c Case) MarkAnnounced() (Case, error) {
	if c.State != StateDecided {
		return c, errors.New("only a decided case is announced")
	}
	c.Announced = true
	return c, nil
}

// TakenEvent is the loan.underwriting.taken.v1 of a case an officer took (it may be decided
// since).
func (c Case) TakenEvent() (events.UnderwritingTaken, error) {
	if c.TakenBy == "" || c.TakenAt.IsZero() {
		return events.UnderwritingTaken{}, errors.New("no officer took the case")
	}
	return events.UnderwritingTaken{SearchID: c.SearchID, TakenBy: c.TakenBy, TakenAt: c.TakenAt}, nil
}

// MarkTakeAnnounced records that the taken event was published.
func (c Case) MarkTakeAnnounced() (Case, error) {
	if c.TakenBy == "" {
		return c, errors.New("only a taken case is announced as taken")
	}
	c.TakeAnnounced = true
	return c, nil
}

// Event is the loan.underwriting.decided.v1 of a decided case.
func (c Case) Event() (events.UnderwritingDecided, error) {
	if c.State != StateDecided || c.Decision == nil {
		return events.UnderwritingDecided{}, errors.New("the case is not decided")
	}
	d := c.Decision
	reasons := slices.Clone(c.ReasonCodes)
	switch {
	case d.By == events.DecidedByFallback:
		reasons = append(reasons, ReasonFallback)
	case d.Proposal.Outcome == events.OutcomeApproved:
		reasons = append(reasons, ReasonOfficerApproved)
	default:
		reasons = append(reasons, ReasonOfficerRejected)
	}
	return events.UnderwritingDecided{
		SearchID: c.SearchID, ProductType: c.ProductType, Amount: c.Amount, Term: c.Term,
		Decision: d.Proposal, DecidedBy: d.By, Comment: d.Comment,
		ReasonCodes: reasons, PolicyVersion: c.PolicyVersion, DecidedAt: d.At,
	}, nil
}

// TimeLeft is how long officers still have at now; zero or less once DecideBy has come.
func (c Case) TimeLeft(now time.Time) time.Duration { return c.DecideBy.Sub(now) }
