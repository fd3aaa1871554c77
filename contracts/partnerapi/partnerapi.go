// Package partnerapi holds the Go types of Yandex Search's loan_approval partner API: the
// requests Yandex sends and the answers the bank returns. openapi.yaml in this module is the
// same contract as an OpenAPI 3 document; golden samples under testdata keep the two in step.
package partnerapi

// DefaultBase is the path prefix Yandex's documentation shows (https://host/integrations).
const DefaultBase = "/integrations"

// Path is the endpoint below the base: POST for applications and polls, GET {Path}/{search_id}
// as our poll extension.
const Path = "/api/banking/loan_approval"

// ProductType names the credit product asked for and offered.
type ProductType string

// Product types of the contract.
const (
	ProductLoan       ProductType = "loan"
	ProductCreditCard ProductType = "credit_card"
)

// Valid reports whether p is one of the contract's product types.
func (p ProductType) Valid() bool { return p == ProductLoan || p == ProductCreditCard }

// Status says whether an answer is final.
type Status string

// Answer statuses.
const (
	StatusPending Status = "pending"
	StatusDone    Status = "done"
)

// Decision is the bank's overall answer to an application.
type Decision string

// Overall decisions.
const (
	DecisionHasApprove Decision = "has_approve"
	DecisionRejected   Decision = "rejected"
)

// OfferDecision is how firm one offer is.
type OfferDecision string

// Offer decisions.
const (
	OfferPreApproved  OfferDecision = "pre_approved"
	OfferFullApproved OfferDecision = "full_approved"
)

// Application is the first call Yandex makes. Amount and Term are required for loans and
// absent in Yandex's credit-card examples.
type Application struct {
	SearchID    string      `json:"search_id"`
	ProductType ProductType `json:"product_type"`
	PhoneNumber string      `json:"phone_number"`
	Amount      *Money      `json:"amount,omitempty"`
	Term        *int        `json:"term,omitempty"`
}

// Poll is the repeat call: only the search_id of an earlier application.
type Poll struct {
	SearchID string `json:"search_id"`
}

// PendingAnswer is the 200 answer while the application is still being decided.
type PendingAnswer struct {
	SearchID string `json:"search_id"`
	Status   Status `json:"status"`
}

// DoneAnswer is the final 200 answer. Data is null exactly when Decision is rejected.
type DoneAnswer struct {
	SearchID string   `json:"search_id"`
	Status   Status   `json:"status"`
	Name     string   `json:"name"`
	Decision Decision `json:"decision"`
	Data     []Offer  `json:"data"`
}

// Offer is one element of DoneAnswer.Data.
type Offer struct {
	ProductType        ProductType   `json:"product_type"`
	Decision           OfferDecision `json:"decision"`
	Amount             MoneyRange    `json:"amount"`
	Term               *TermRange    `json:"term,omitempty"`
	Rate               RateRange     `json:"rate"`
	TotalCost          RateRange     `json:"total_cost"`
	GracePeriod        *int          `json:"grace_period,omitempty"`
	Payment            Payment       `json:"payment"`
	SpecialConditions  []string      `json:"special_conditions,omitempty"`
	RequiredDocuments  []string      `json:"required_documents,omitempty"`
	ChoosableDocuments []string      `json:"choosable_documents,omitempty"`
	ProposalLink       ProposalLink  `json:"propousal_link"`
	Props              []string      `json:"props,omitempty"`
}

// MoneyRange is an amount range in roubles (for a card, the credit limit).
type MoneyRange struct {
	Min Money `json:"min"`
	Max Money `json:"max"`
}

// TermRange is a term range in months.
type TermRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// RateRange is a range of yearly percentages: the interest rate or the ПСК.
type RateRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Payment is the monthly payment range of a loan, or the minimum payment share of a card.
type Payment struct {
	Min    *Money   `json:"min,omitempty"`
	Max    *Money   `json:"max,omitempty"`
	CCRate *float64 `json:"cc_rate,omitempty"`
}

// ProposalLink points the user at the application form. At least one of the two is set.
// The JSON key is spelled "propousal_link" in Yandex's contract and is kept so.
type ProposalLink struct {
	Link string `json:"link,omitempty"`
	Deep string `json:"deep,omitempty"`
}

// ErrorAnswer is the body of every 4xx and 5xx answer. SearchID is empty when it could not be
// read from the request.
type ErrorAnswer struct {
	SearchID   string   `json:"search_id"`
	Message    string   `json:"message"`
	Properties []string `json:"properties,omitempty"`
}
