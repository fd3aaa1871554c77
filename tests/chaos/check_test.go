package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the published topology and event contracts (contracts/topology, contracts/events),
// repeated here: this test sees the system only from outside.
const (
	streamLoans      = "LOANS"
	streamAudit      = "AUDIT"
	bucketDecisions  = "loan_decisions"
	consumerAudit    = "audit"
	headerSearchID   = "Loanflow-Search-Id"
	typeReceived     = "loan.application.received.v1"
	typeScored       = "loan.application.scored.v1"
	typeDecisionMade = "loan.decision.made.v1"
	typeFailed       = "loan.application.failed.v1"
)

// consumerNames are the durable consumers the services declare.
var consumerNames = []string{"scoring", "offers", consumerAudit, "ingress-failures", "ingress-deadline"}

// loansEvent is one event of the LOANS stream.
type loansEvent struct {
	seq      uint64
	subject  string
	searchID string
	// reason and stage of a loan.application.failed.v1.
	reason, stage string
}

// history is what the LOANS stream holds for one search_id.
type history struct {
	counts  map[string]int // by event type (subject)
	reasons []string       // stage/reason of each failure event
}

// auditRecord is the part of an AUDIT record this test reads.
type auditRecord struct {
	Seq       uint64 `json:"seq"`
	SourceSeq uint64 `json:"source_seq"`
	EventType string `json:"event_type"`
	SearchID  string `json:"search_id"`
}

// readStream calls fn for every message of stream up to sequence last, through an ordered
// consumer, within timeout.
func readStream(js jetstream.JetStream, stream string, last uint64, timeout time.Duration, fn func(jetstream.Msg) error) error {
	if last == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("read %s: not at sequence %d after %v", stream, last, timeout)
		}
		msg, err := it.Next(jetstream.NextMaxWait(5 * time.Second))
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if err != nil {
			continue // a timeout: the leader may be moving; the overall timeout bounds this
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if err := fn(msg); err != nil {
			return err
		}
		if meta.Sequence.Stream >= last {
			return nil
		}
	}
}

// scanLoans reads every LOANS event up to last.
func scanLoans(js jetstream.JetStream, last uint64, timeout time.Duration) ([]loansEvent, error) {
	var out []loansEvent
	err := readStream(js, streamLoans, last, timeout, func(m jetstream.Msg) error {
		meta, _ := m.Metadata()
		if meta.Sequence.Stream > last {
			return nil
		}
		ev := loansEvent{seq: meta.Sequence.Stream, subject: m.Subject(), searchID: m.Headers().Get(headerSearchID)}
		if ev.subject == typeFailed {
			var f struct{ Reason, Stage string }
			if err := json.Unmarshal(m.Data(), &f); err == nil {
				ev.reason, ev.stage = f.Reason, f.Stage
			}
		}
		out = append(out, ev)
		return nil
	})
	return out, err
}

// scanAudit reads every AUDIT record up to last.
func scanAudit(js jetstream.JetStream, last uint64, timeout time.Duration) ([]auditRecord, error) {
	var out []auditRecord
	err := readStream(js, streamAudit, last, timeout, func(m jetstream.Msg) error {
		var r auditRecord
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			meta, _ := m.Metadata()
			return fmt.Errorf("AUDIT record %d is not JSON: %w", meta.Sequence.Stream, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// streamLast returns a stream's last sequence.
func streamLast(js jetstream.JetStream, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// waitAuditCaughtUp waits until the audit consumer has acknowledged every LOANS event and the
// LOANS stream stopped growing; it returns the LOANS sequence it caught up with.
func waitAuditCaughtUp(js jetstream.JetStream, timeout time.Duration) (uint64, error) {
	var caught uint64
	err := waitFor(timeout, 500*time.Millisecond, func() error {
		last, err := streamLast(js, streamLoans)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, streamLoans, consumerAudit)
		if err != nil {
			return err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if ci.NumPending > 0 || ci.NumAckPending > 0 || ci.AckFloor.Stream < last {
			return fmt.Errorf("audit consumer at %d of %d (pending %d, ack pending %d)", ci.AckFloor.Stream, last, ci.NumPending, ci.NumAckPending)
		}
		if last != caught { // once more, to see the stream quiet
			caught = last
			return fmt.Errorf("LOANS still growing at %d", last)
		}
		return nil
	})
	return caught, err
}

// consumerStates describes every durable consumer, for the report.
func consumerStates(js jetstream.JetStream) string {
	var b strings.Builder
	for _, name := range consumerNames {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ci, err := func() (*jetstream.ConsumerInfo, error) {
			c, err := js.Consumer(ctx, streamLoans, name)
			if err != nil {
				return nil, err
			}
			return c.Info(ctx)
		}()
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "  %s: %v\n", name, err)
			continue
		}
		fmt.Fprintf(&b, "  %s: delivered %d, ack floor %d, pending %d, ack pending %d, redelivered %d, waiting %d\n",
			name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
	}
	return b.String()
}

// decisionRecord returns the raw loan_decisions entry of a search_id, for a report.
func decisionRecord(js jetstream.JetStream, searchID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bucketDecisions)
	if err != nil {
		return err.Error()
	}
	e, err := kv.Get(ctx, searchID)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("rev %d: %s", e.Revision(), e.Value())
}

// histories groups LOANS events by search_id.
func histories(evs []loansEvent) map[string]*history {
	out := map[string]*history{}
	for _, ev := range evs {
		h := out[ev.searchID]
		if h == nil {
			h = &history{counts: map[string]int{}}
			out[ev.searchID] = h
		}
		h.counts[ev.subject]++
		if ev.subject == typeFailed {
			h.reasons = append(h.reasons, ev.stage+"/"+ev.reason)
		}
	}
	return out
}

// auditCheck compares the AUDIT records with the LOANS events: every event up to the caught-up
// sequence recorded exactly once, nothing recorded that LOANS does not hold.
type auditCheck struct {
	recorded   int      // distinct LOANS sequences recorded
	missing    []uint64 // LOANS sequences without a record
	duplicated []string // LOANS sequences recorded more than once, with their AUDIT sequences
	unknown    []string // records whose source_seq is no LOANS event
	misnumber  []string // records whose own seq is not their place in the stream
}

func checkAudit(loans []loansEvent, recs []auditRecord, firstAuditSeq uint64) auditCheck {
	var c auditCheck
	inLoans := make(map[uint64]bool, len(loans))
	for _, ev := range loans {
		inLoans[ev.seq] = true
	}
	bySource := make(map[uint64][]uint64, len(recs))
	for i, r := range recs {
		if want := firstAuditSeq + uint64(i); r.Seq != want {
			c.misnumber = append(c.misnumber, fmt.Sprintf("record at %d says seq %d", want, r.Seq))
		}
		bySource[r.SourceSeq] = append(bySource[r.SourceSeq], r.Seq)
	}
	var lastLoans uint64
	if len(loans) > 0 {
		lastLoans = loans[len(loans)-1].seq
	}
	for _, ev := range loans {
		switch n := len(bySource[ev.seq]); {
		case n == 0:
			c.missing = append(c.missing, ev.seq)
		case n > 1:
			c.duplicated = append(c.duplicated, fmt.Sprintf("LOANS %d (%s %s) as AUDIT %v", ev.seq, ev.subject, ev.searchID, bySource[ev.seq]))
		}
	}
	c.recorded = len(loans) - len(c.missing)
	var unknown []uint64
	for src := range bySource {
		// Records of events after the caught-up point are checked only for being events.
		if !inLoans[src] && src <= lastLoans {
			unknown = append(unknown, src)
		}
	}
	sort.Slice(unknown, func(i, j int) bool { return unknown[i] < unknown[j] })
	for _, src := range unknown {
		c.unknown = append(c.unknown, fmt.Sprintf("source_seq %d as AUDIT %v", src, bySource[src]))
	}
	sort.Strings(c.duplicated)
	return c
}

func (c auditCheck) ok() bool {
	return len(c.missing) == 0 && len(c.duplicated) == 0 && len(c.unknown) == 0 && len(c.misnumber) == 0
}

// firstN formats at most n items of list.
func firstN[T any](list []T, n int) string {
	if len(list) <= n {
		return fmt.Sprint(list)
	}
	return fmt.Sprintf("%v … (%d in all)", list[:n], len(list))
}
