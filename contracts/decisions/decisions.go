// Package decisions is the value format of the loan_decisions KV bucket: one Record per
// search_id, written first by ingress (pending), then by offer assembly (done) or by ingress on
// a loan.application.failed.v1 (failed). The record never holds the phone number.
package decisions

import (
	"time"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// Status is where an application stands.
type Status string

// Record statuses. done and failed are final: nothing overwrites them.
const (
	StatusPending Status = "pending"
	StatusDone    Status = "done"
	StatusFailed  Status = "failed"
)

// Record is one application's state.
type Record struct {
	SearchID string `json:"search_id"`
	Status   Status `json:"status"`
	// Fingerprint is a keyed hash of the application's fields: a repeat with the same
	// search_id must carry the same fingerprint.
	Fingerprint string `json:"fingerprint,omitempty"`
	// CorrelationID is the first HTTP request's correlation id.
	CorrelationID string `json:"correlation_id,omitempty"`
	// Answer is the final answer when Status is done.
	Answer *partnerapi.DoneAnswer `json:"answer,omitempty"`
	// Failure says why when Status is failed.
	Failure   *Failure  `json:"failure,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Final reports whether the record can no longer change.
func (r Record) Final() bool { return r.Status == StatusDone || r.Status == StatusFailed }

// Failure records the stage that gave up and its reason code.
type Failure struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
}
