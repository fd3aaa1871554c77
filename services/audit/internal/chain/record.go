// Package chain is the audit trail's domain: the record appended to the AUDIT stream for every
// pipeline event, its canonical encoding and hash chain, verification of a stored chain,
// pseudonymisation of payloads and rendering of records for the replay command. It does no
// I/O of its own beyond the io.Writer it renders to.
//
// Every record holds the SHA-256 of the record before it (prev_hash), so altering, removing
// or reordering a stored record breaks the chain at that point. The hash covers a canonical
// encoding, not the stored JSON, so that re-encoding a record (key order, whitespace,
// escapes) never changes its hash; see Canonical.
package chain

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
)

// GenesisHash is the prev_hash of the first record of the chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Stages: the service an audited event comes from.
const (
	StageIngress = "ingress"
	StageScoring = "scoring"
	StageOffers  = "offers"
	StageAudit   = "audit"
	StageConsole = "console"
)

// Record is one audit record: one pipeline event as the AUDIT stream keeps it.
type Record struct {
	// Seq is the record's own sequence in the AUDIT stream; the chain has no other order.
	Seq uint64 `json:"seq"`
	// Time is when the record was made, in UTC.
	Time time.Time `json:"time"`
	// EventType is the event's type name, e.g. loan.application.received.v1.
	EventType string `json:"event_type"`
	// SearchID is the application the event belongs to; empty when the event had none.
	SearchID string `json:"search_id"`
	// Stage is the service the event comes from: ingress, scoring, offers or audit (StageOf).
	Stage string `json:"stage"`
	// CorrelationID is the correlation id of the HTTP request behind the event.
	CorrelationID string `json:"correlation_id"`
	// SourceSeq is the event's sequence in the LOANS stream: what makes recording an event
	// twice detectable.
	SourceSeq uint64 `json:"source_seq"`
	// Payload is the event's JSON body, pseudonymised and in canonical form once sealed.
	Payload json.RawMessage `json:"payload"`
	// PrevHash is the Hash of the record before, or GenesisHash for the first one.
	PrevHash string `json:"prev_hash"`
	// Hash is the hex SHA-256 of the record's canonical encoding.
	Hash string `json:"hash"`
}

// stageByEvent maps event names without their version suffix, so that a future ".v2" of an
// event is still attributed to the stage that emits it.
var stageByEvent = map[string]string{
	trimVersion(events.TypeApplicationReceived): StageIngress,
	trimVersion(events.TypeApplicationScored):   StageScoring,
	trimVersion(events.TypeDecisionMade):        StageOffers,
	trimVersion(events.TypeApplicationReferred): StageScoring,
	trimVersion(events.TypeUnderwritingTaken):   StageConsole,
	trimVersion(events.TypeUnderwritingDecided): StageConsole,
	trimVersion(events.TypeOfferClicked):        StageIngress,
}

// StageOf returns the stage an event comes from: fixed by its type, except for
// loan.application.failed, which names the stage that gave up in its "stage" field. It
// returns "" when the type is unknown or a failure names no known stage.
func StageOf(eventType string, payload []byte) string {
	name := trimVersion(eventType)
	if s, ok := stageByEvent[name]; ok {
		return s
	}
	if name != trimVersion(events.TypeApplicationFailed) {
		return ""
	}
	var f struct {
		Stage string `json:"stage"`
	}
	if json.Unmarshal(payload, &f) != nil {
		return ""
	}
	switch f.Stage {
	case StageIngress, StageScoring, StageOffers, StageAudit, StageConsole:
		return f.Stage
	}
	return ""
}

// trimVersion cuts a trailing ".v<digits>" from an event type name.
func trimVersion(t string) string {
	i := strings.LastIndex(t, ".v")
	if i < 0 || i+2 == len(t) {
		return t
	}
	for _, c := range t[i+2:] {
		if c < '0' || c > '9' {
			return t
		}
	}
	return t[:i]
}
