package console

import (
	"log/slog"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
)

// TestFeedReadsAuditRecords folds audit records as the AUDIT stream holds them: the event type
// and payload of each record, as the LOANS feed read the events; other types, records that do
// not decode and payloads without a search_id count for nothing.
func TestFeedReadsAuditRecords(t *testing.T) {
	f := newFeed(nil, 250*time.Millisecond, slog.New(slog.DiscardHandler))
	now := time.Now().UTC()
	at := now.Add(-time.Minute)
	const id, late, referred = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000003"
	for _, r := range [][]byte{
		// A received record as the audit pseudonymises it: the phone is an object, the rest as sent.
		auditRecordJSON(1, events.TypeApplicationReceived, id, map[string]any{
			"search_id": id, "product_type": "loan", "received_at": at, "phone_number": map[string]string{"hash": "ab", "mask": "93******40"},
		}),
		auditRecordJSON(2, events.TypeApplicationScored, id, map[string]any{"search_id": id, "decision": "has_approve", "decided_at": at}),
		auditRecordJSON(3, events.TypeDecisionMade, id, map[string]any{
			"search_id": id, "product_type": "loan", "decision": "has_approve", "decided_at": at.Add(100 * time.Millisecond),
		}),
		auditRecordJSON(4, events.TypeApplicationReceived, late, map[string]any{"search_id": late, "product_type": "credit_card", "received_at": at}),
		auditRecordJSON(5, events.TypeDecisionMade, late, map[string]any{
			"search_id": late, "product_type": "credit_card", "decision": "rejected", "decided_at": at.Add(3 * time.Second),
		}),
		auditRecordJSON(6, events.TypeApplicationReceived, referred, map[string]any{"search_id": referred, "product_type": "loan", "received_at": at}),
		auditRecordJSON(7, events.TypeApplicationReferred, referred, map[string]any{"search_id": referred, "referred_at": at}),
		auditRecordJSON(8, events.TypeUnderwritingDecided, referred, map[string]any{
			"search_id": referred, "decided_by": events.DecidedByFallback, "decided_at": at.Add(time.Second),
		}),
		auditRecordJSON(9, events.TypeApplicationFailed, late, map[string]any{"search_id": late, "reason": "RETRIES_EXHAUSTED", "failed_at": at}),
		auditRecordJSON(10, events.TypeApplicationReceived, "", map[string]any{"product_type": "loan", "received_at": at}),
		[]byte(`{"event_type":"` + events.TypeApplicationReceived + `","payload":"not an object"}`),
		[]byte(`not json`),
	} {
		f.add(r, now)
	}
	s := f.summary(now)
	if s.Received != 3 || s.SyncEligible != 3 || s.SyncDecided != 1 {
		t.Errorf("received %d, decided synchronously %d of %d; want 3, 1 of 3", s.Received, s.SyncDecided, s.SyncEligible)
	}
	if s.Referred != 1 || s.ByFallback != 1 || s.ByOfficer != 0 {
		t.Errorf("referred %d, by the fallback %d, by an officer %d; want 1, 1, 0", s.Referred, s.ByFallback, s.ByOfficer)
	}
	if len(s.Failures) != 1 || s.Failures[0].Label != "RETRIES_EXHAUSTED" || s.Failures[0].N != 1 {
		t.Errorf("failures %+v, want one RETRIES_EXHAUSTED", s.Failures)
	}
	if f.last != now {
		t.Errorf("last read %v, want the stream time of the last record %v", f.last, now)
	}
}
