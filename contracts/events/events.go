// Package events holds the v1 event payloads that loanflow's services exchange on the LOANS
// stream, their type names and the message headers every event carries.
//
// Version rules: the type name and the subject end in the major version. Adding an optional
// field is compatible; anything else is a new version (".v2"), published side by side until
// every consumer has moved. Consumers ignore unknown fields.
package events

import (
	"time"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// Event type names. Each is also the subject the event is published on.
const (
	TypeApplicationReceived = "loan.application.received.v1"
	TypeApplicationScored   = "loan.application.scored.v1"
	TypeDecisionMade        = "loan.decision.made.v1"
	TypeApplicationFailed   = "loan.application.failed.v1"
	// TypeApplicationReferred: scoring sends the application to manual underwriting.
	TypeApplicationReferred = "loan.application.referred.v1"
	// TypeUnderwritingTaken: an officer took a referral to decide it.
	TypeUnderwritingTaken = "loan.underwriting.taken.v1"
	// TypeUnderwritingDecided: an officer, or the policy's fallback, decided a referral.
	TypeUnderwritingDecided = "loan.underwriting.decided.v1"
	// TypeOfferClicked: the user followed an offer's proposal link.
	TypeOfferClicked = "loan.offer.clicked.v1"
)

// Types lists every v1 event type, in pipeline order.
var Types = []string{
	TypeApplicationReceived, TypeApplicationScored, TypeApplicationReferred, TypeUnderwritingTaken, TypeUnderwritingDecided,
	TypeDecisionMade, TypeApplicationFailed, TypeOfferClicked,
}

// Headers every event carries.
const (
	HeaderMsgID         = "Nats-Msg-Id"             // JetStream deduplication key: MsgID(search_id, type)
	HeaderEventType     = "Loanflow-Event-Type"     // one of the Type* names
	HeaderSearchID      = "Loanflow-Search-Id"      // the application's search_id
	HeaderCorrelationID = "Loanflow-Correlation-Id" // the HTTP request's correlation id
	HeaderTraceParent   = "traceparent"             // W3C trace context of the HTTP request
)

// MsgID is the deduplication id of the event of type eventType for one application: a stage
// emits each event type at most once per search_id.
func MsgID(searchID, eventType string) string { return searchID + ":" + eventType }

// ApplicationReceived is published by ingress once per accepted application. It never holds
// the phone number in clear: PhoneHash is a keyed hash (HMAC-SHA256, hex) and PhoneMask shows
// only the first two and last two digits.
type ApplicationReceived struct {
	SearchID    string                 `json:"search_id"`
	ProductType partnerapi.ProductType `json:"product_type"`
	PhoneHash   string                 `json:"phone_hash"`
	PhoneMask   string                 `json:"phone_mask"`
	Amount      *partnerapi.Money      `json:"amount,omitempty"`
	Term        *int                   `json:"term,omitempty"`
	Fingerprint string                 `json:"fingerprint"`
	ReceivedAt  time.Time              `json:"received_at"`
}

// Outcome is scoring's verdict.
type Outcome string

// Scoring outcomes.
const (
	OutcomeApproved Outcome = "approved"
	OutcomeRejected Outcome = "rejected"
)

// ApplicationScored is published by scoring with its decision. Reason codes are for the
// bank's records and the audit; they are never sent to Yandex.
type ApplicationScored struct {
	SearchID    string                   `json:"search_id"`
	ProductType partnerapi.ProductType   `json:"product_type"`
	Amount      *partnerapi.Money        `json:"amount,omitempty"`
	Term        *int                     `json:"term,omitempty"`
	Outcome     Outcome                  `json:"outcome"`
	Approval    partnerapi.OfferDecision `json:"approval,omitempty"`
	// Grade is the client's risk grade that prices the offer: a bureau grade, or "unknown"
	// for a client the bank has no data on.
	Grade string `json:"grade"`
	// MaxAmount is the largest loan amount, or card limit, the client qualifies for.
	MaxAmount partnerapi.Money `json:"max_amount"`
	// MaxPayment is the largest monthly payment the new credit may take under the policy's
	// debt-to-income limit, which offer assembly keeps every offer's payment within. Optional:
	// zero (left out) when the bank has no income to measure it against (an unknown client,
	// a rejection) or from a scoring that predates it.
	MaxPayment    partnerapi.Money `json:"max_payment,omitempty"`
	ReasonCodes   []string         `json:"reason_codes"`
	PolicyVersion string           `json:"policy_version"`
	ScoredAt      time.Time        `json:"scored_at"`
}

// DecisionMade is published by offer assembly once the final answer is in the decisions
// bucket.
type DecisionMade struct {
	SearchID       string                 `json:"search_id"`
	ProductType    partnerapi.ProductType `json:"product_type"`
	Decision       partnerapi.Decision    `json:"decision"`
	Offers         []partnerapi.Offer     `json:"offers"`
	ReasonCodes    []string               `json:"reason_codes"`
	PolicyVersion  string                 `json:"policy_version"`
	CatalogVersion string                 `json:"catalog_version"`
	// Dropped lists the offers the catalog produced but the self-check refused to send, with
	// the checks each failed; the answer never carries them. Optional.
	Dropped   []DroppedOffer `json:"dropped,omitempty"`
	DecidedAt time.Time      `json:"decided_at"`
}

// DroppedOffer is an offer the self-check kept out of the answer.
type DroppedOffer struct {
	// OfferID is the catalog's product id.
	OfferID string `json:"offer_id"`
	// Checks are the stable codes of the checks the offer failed (e.g. "psk_above_cap").
	Checks []string `json:"checks"`
}

// ClientFigures are the profile figures scoring decided on, shown to an underwriting officer.
// They hold no personal data: no name, no phone.
type ClientFigures struct {
	MonthlyIncome       partnerapi.Money `json:"monthly_income"`
	MonthlyDebtPayments partnerapi.Money `json:"monthly_debt_payments"`
	BureauGrade         string           `json:"bureau_grade"`
	ClientSince         string           `json:"client_since,omitempty"` // YYYY-MM-DD
	SalaryClient        bool             `json:"salary_client"`
}

// Proposal is an approval's terms: how firm, the grade that prices it, up to how much.
type Proposal struct {
	// Outcome is approved or rejected.
	Outcome  Outcome                  `json:"outcome"`
	Approval partnerapi.OfferDecision `json:"approval,omitempty"`
	Grade    string                   `json:"grade,omitempty"`
	// MaxAmount is the largest loan amount or card limit offered; zero when rejected.
	MaxAmount partnerapi.Money `json:"max_amount"`
	// MaxPayment is the largest monthly payment, as in ApplicationScored. Optional.
	MaxPayment partnerapi.Money `json:"max_payment,omitempty"`
}

// ApplicationReferred is published by scoring instead of ApplicationScored when its policy
// sends the application to an officer. The application stays pending for Yandex until
// UnderwritingDecided; at DecideBy the policy's Fallback applies.
type ApplicationReferred struct {
	SearchID    string                 `json:"search_id"`
	ProductType partnerapi.ProductType `json:"product_type"`
	Amount      *partnerapi.Money      `json:"amount,omitempty"`
	Term        *int                   `json:"term,omitempty"`
	// PhoneHash and PhoneMask as in ApplicationReceived: never the number itself.
	PhoneHash string `json:"phone_hash"`
	PhoneMask string `json:"phone_mask"`
	// Client is the profile scoring saw; nil for a client the bank does not know.
	Client *ClientFigures `json:"client,omitempty"`
	// Suggested is what the policy would approve without the referral.
	Suggested Proposal `json:"suggested"`
	// MinAmount and MaxAmount bound what an officer may approve.
	MinAmount partnerapi.Money `json:"min_amount"`
	MaxAmount partnerapi.Money `json:"max_amount"`
	// Fallback is the decision applied when no officer decides by DecideBy.
	Fallback      Proposal  `json:"fallback"`
	ReasonCodes   []string  `json:"reason_codes"`
	PolicyVersion string    `json:"policy_version"`
	ReceivedAt    time.Time `json:"received_at"`
	ReferredAt    time.Time `json:"referred_at"`
	DecideBy      time.Time `json:"decide_by"`
}

// UnderwritingDecided closes a referral: an officer's decision, or the policy's fallback. Offer
// assembly turns it into the answer as it does ApplicationScored.
type UnderwritingDecided struct {
	SearchID    string                 `json:"search_id"`
	ProductType partnerapi.ProductType `json:"product_type"`
	Amount      *partnerapi.Money      `json:"amount,omitempty"`
	Term        *int                   `json:"term,omitempty"`
	Decision    Proposal               `json:"decision"`
	// DecidedBy is the officer's login, or DecidedByFallback.
	DecidedBy string `json:"decided_by"`
	// Comment is the officer's; it must not hold personal data.
	Comment       string    `json:"comment,omitempty"`
	ReasonCodes   []string  `json:"reason_codes"`
	PolicyVersion string    `json:"policy_version"`
	DecidedAt     time.Time `json:"decided_at"`
}

// UnderwritingTaken records that an officer took a referral: from then on only that officer
// (or, at DecideBy, the fallback) can decide it.
type UnderwritingTaken struct {
	SearchID string `json:"search_id"`
	// TakenBy is the officer's login.
	TakenBy string    `json:"taken_by"`
	TakenAt time.Time `json:"taken_at"`
}

// DecidedByFallback is UnderwritingDecided.DecidedBy when the policy's fallback decided.
const DecidedByFallback = "policy-fallback"

// OfferClicked is published by ingress when a user follows a valid proposal link.
type OfferClicked struct {
	SearchID string `json:"search_id"`
	// OfferID is the catalog's product id the link preselects.
	OfferID string `json:"offer_id"`
	// Channel is "web" or "deep" (the app's link).
	Channel   string    `json:"channel"`
	ExpiresAt time.Time `json:"expires_at"`
	ClickedAt time.Time `json:"clicked_at"`
}

// ApplicationFailed is published by a stage that gave up on an event: after its last retry,
// or at once for an event it can never process. The application's poll then answers 500.
type ApplicationFailed struct {
	SearchID string `json:"search_id"`
	// Stage is the service that gave up: ingress, scoring, offers or audit.
	Stage string `json:"stage"`
	// Reason is a stable code: "poison" (undecodable or invalid event), "retries_exhausted",
	// "timeout" (undecided at the answer deadline).
	Reason string `json:"reason"`
	// Detail describes the last error for operators; it never holds personal data.
	Detail     string    `json:"detail"`
	EventType  string    `json:"event_type"`
	Deliveries int       `json:"deliveries"`
	FailedAt   time.Time `json:"failed_at"`
}

// Failure reasons of ApplicationFailed.
const (
	ReasonPoison           = "poison"
	ReasonRetriesExhausted = "retries_exhausted"
	// ReasonTimeout: the application was still undecided at the answer deadline.
	ReasonTimeout = "timeout"
)
