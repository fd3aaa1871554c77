package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/pkg/tracing"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

// writer is the chain's single appender. It reads the audit consumer in batches, appends one
// record per event in stream order and publishes them pipelined, each expecting the stream's
// last sequence to be its predecessor: two writers can never fork the chain, they only make
// each other re-read the head. It acks an event only once its record is stored, and never
// gives up on one: a batch that cannot be stored is retried with back-off.
//
// Watermill's router hands messages to handlers one by one in parallel; the chain needs them
// in order and in batches, so the writer reads the consumer with nats.go directly.
type writer struct {
	js          jetstream.JetStream
	hasher      *pseudonym.Hasher
	log         *slog.Logger
	key         ed25519.PrivateKey
	checkpoints jetstream.KeyValue
	timeout     time.Duration
	interval    time.Duration
	batch       int
	backoff     []time.Duration
	// metrics counts the audit consumer's redeliveries, as bus.Run does for every stage.
	metrics *bus.Metrics

	chain *chain.Chain
	// head is the chain's stored head sequence, for the metrics scrape (another goroutine).
	head atomic.Uint64
	// recent holds the LOANS sequences of the latest records: an event redelivered after its
	// record was stored (a lost ack, a restart) is recognised and not recorded twice.
	recent *seqSet
	// highest is the highest LOANS sequence recorded. An event at or below it arrives out of
	// order (a redelivery, a recreated consumer): when recent has forgotten it, the records of
	// its application are read to tell whether it was recorded.
	highest uint64

	checkpointedSeq uint64
	checkpointedAt  time.Time
}

func (w *writer) run(ctx context.Context, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		b, err := cons.Fetch(w.batch, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			w.log.Warn("audit fetch", "err", err)
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		var msgs []event
		for m := range b.Messages() {
			seq, delivered := deliveryOf(m)
			w.metrics.Redelivery(topology.ConsumerAudit, delivered)
			msgs = append(msgs, event{Msg: m, seq: seq})
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			w.log.Warn("audit fetch", "err", err)
		}
		if len(msgs) > 0 {
			w.record(ctx, msgs)
		}
		if time.Since(w.checkpointedAt) >= w.interval {
			w.checkpoint(ctx)
		}
	}
	// The batch in hand is finished (or left for redelivery); vouch for what was written.
	w.checkpoint(context.WithoutCancel(ctx))
	return nil
}

// event is a fetched message with its LOANS sequence, parsed once from the reply subject.
type event struct {
	jetstream.Msg
	seq uint64
}

// record appends one batch, retrying until every event is recorded or ctx ends.
func (w *writer) record(ctx context.Context, msgs []event) {
	slices.SortFunc(msgs, func(a, b event) int { return compareSeq(a.seq, b.seq) })
	for attempt := 0; ; attempt++ {
		todo, err := w.unrecorded(ctx, msgs)
		if err == nil && len(todo) == 0 {
			return
		}
		stored := 0
		if err == nil {
			stored, err = w.append(ctx, todo)
		}
		for _, m := range todo[:stored] {
			w.recent.add(m.seq)
			w.highest = max(w.highest, m.seq)
			if aerr := m.Ack(); aerr != nil {
				w.log.Warn("audit ack", "err", aerr)
			}
		}
		if err == nil {
			return
		}
		if todo != nil {
			msgs = todo[stored:]
		}
		w.log.Error("audit append failed, retrying", "stored", stored, "pending", len(msgs), "attempt", attempt+1, "err", err)
		for _, m := range msgs {
			_ = m.InProgress() // keep them ours while we retry
		}
		if rerr := w.resync(context.WithoutCancel(ctx)); rerr != nil {
			w.log.Error("audit head resync failed", "err", rerr)
		}
		if !sleep(ctx, w.delay(attempt)) {
			return // shutting down: the rest is redelivered to the next writer
		}
	}
}

// unrecorded acks the events of msgs whose records are stored already and returns the rest.
func (w *writer) unrecorded(ctx context.Context, msgs []event) ([]event, error) {
	todo := make([]event, 0, len(msgs))
	for _, m := range msgs {
		done := w.recent.has(m.seq)
		if !done && m.seq <= w.highest {
			var err error
			if done, err = w.isRecorded(ctx, m); err != nil {
				return nil, fmt.Errorf("look up LOANS %d: %w", m.seq, err)
			}
			if done {
				w.recent.add(m.seq)
			}
		}
		if done {
			_ = m.Ack() // recorded before: a redelivery
			continue
		}
		todo = append(todo, m)
	}
	return todo, nil
}

// isRecorded reads the records of m's application (a handful: one per event) for one of m.
// JetStream's duplicate window is not enough on its own: it lasts two minutes, a redelivery
// can come later, and in a cluster chaos run (acks lost with a killed consumer leader) seven
// redeliveries 30 s late were stored again as new records.
func (w *writer) isRecorded(ctx context.Context, m event) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	subject := topology.AuditSubject(subjectToken(m.Headers().Get(events.HeaderSearchID)))
	for seq := uint64(1); ; {
		raw, err := bus.DirectGet(ctx, w.js.Conn(), topology.StreamAudit, bus.DirectRequest{Seq: seq, NextFor: subject})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if rec, err := chain.ParseRecord(raw.Data); err == nil && rec.SourceSeq == m.seq {
			return true, nil
		}
		seq = raw.Sequence + 1
	}
}

// append seals and publishes records for msgs, pipelined, and returns how many of them (a
// prefix: each expects its predecessor) the stream has stored.
func (w *writer) append(ctx context.Context, msgs []event) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	seqs := make([]uint64, 0, len(msgs))
	var perr error
	for _, m := range msgs {
		// The record joins the trace of the event it records.
		_, span := tracing.Tracer().Start(tracing.Extract(ctx, map[string]string{events.HeaderTraceParent: m.Headers().Get(events.HeaderTraceParent)}),
			"audit record", trace.WithSpanKind(trace.SpanKindConsumer))
		rec, err := w.chain.Append(w.recordOf(m))
		span.SetAttributes(attribute.Int64("loanflow.audit_seq", int64(rec.Seq)))
		span.End()
		if err != nil {
			perr = fmt.Errorf("seal record for LOANS %d: %w", m.seq, err)
			break
		}
		data, err := json.Marshal(rec)
		if err != nil {
			perr = err
			break
		}
		f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: topology.AuditSubject(subjectToken(rec.SearchID)), Data: data},
			jetstream.WithExpectLastSequence(rec.Seq-1),
			jetstream.WithMsgID("audit:"+strconv.FormatUint(rec.SourceSeq, 10)))
		if err != nil {
			perr = err
			break
		}
		futures, seqs = append(futures, f), append(seqs, rec.Seq)
	}
	timer := time.NewTimer(w.timeout)
	defer timer.Stop()
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate || ack.Sequence != seqs[i] {
				return i, fmt.Errorf("record %d stored as %d (duplicate %v)", seqs[i], ack.Sequence, ack.Duplicate)
			}
			w.head.Store(ack.Sequence)
		case err := <-f.Err():
			return i, fmt.Errorf("record %d: %w", seqs[i], err)
		case <-timer.C:
			return i, fmt.Errorf("record %d: no acknowledgement within %v", seqs[i], w.timeout)
		}
	}
	return len(futures), perr
}

// recordOf builds the record of one event. Payloads are pseudonymised; one that is not JSON is
// recorded as its size and digest, never its bytes (they could hold anything).
func (w *writer) recordOf(m event) chain.Record {
	h := m.Headers()
	eventType := h.Get(events.HeaderEventType)
	if eventType == "" {
		eventType = m.Subject()
	}
	payload, err := chain.Pseudonymise(m.Data(), w.hasher)
	if err != nil {
		sum := sha256.Sum256(m.Data())
		payload, _ = json.Marshal(map[string]any{"undecodable": true, "bytes": len(m.Data()), "sha256": hex.EncodeToString(sum[:])})
	}
	return chain.Record{
		Time:          time.Now().UTC(),
		EventType:     eventType,
		SearchID:      h.Get(events.HeaderSearchID),
		Stage:         chain.StageOf(eventType, payload),
		CorrelationID: h.Get(events.HeaderCorrelationID),
		SourceSeq:     m.seq,
		Payload:       payload,
	}
}

// resync re-reads the chain's head and the recent records from the stream, with direct gets
// (the audit user has no stream API: no STREAM.INFO, no STREAM.MSG.GET): the last record,
// then a batch of the ones before it. AUDIT denies deletes, so those are the latest records.
func (w *writer) resync(ctx context.Context) error {
	nc := w.js.Conn()
	headSeq, headHash := uint64(0), chain.GenesisHash
	var sources []uint64 // oldest first
	head, err := bus.DirectGet(ctx, nc, topology.StreamAudit, bus.DirectRequest{LastFor: topology.SubjectAudit})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound): // an empty chain
	case err != nil:
		return fmt.Errorf("audit head: %w", err)
	default:
		rec, err := chain.ParseRecord(head.Data)
		if err != nil {
			// A record that does not parse was not written by a writer: verify reports it.
			return fmt.Errorf("audit head %d does not parse: %w", head.Sequence, err)
		}
		headSeq, headHash = head.Sequence, rec.Hash
		n := uint64(w.recent.capacity())
		from := uint64(1)
		if headSeq > n {
			from = headSeq - n + 1
		}
		_, err = bus.DirectBatch(ctx, nc, topology.StreamAudit, bus.DirectRequest{Seq: from, NextFor: topology.SubjectAudit, Batch: int(n), UpToSeq: headSeq},
			func(m *jetstream.RawStreamMsg) bool {
				// One that does not parse is skipped: the chain continues from it all the same.
				if r, err := chain.ParseRecord(m.Data); err == nil {
					sources = append(sources, r.SourceSeq)
				}
				return true
			})
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("audit records before %d: %w", headSeq, err)
		}
	}
	slices.Reverse(sources) // newest first, as below expects
	w.recent.reset()
	w.highest = 0
	for i := len(sources) - 1; i >= 0; i-- {
		w.recent.add(sources[i])
		w.highest = max(w.highest, sources[i])
	}
	w.head.Store(headSeq)
	c, err := chain.NewChain(headSeq, headHash)
	if err != nil {
		return err
	}
	w.chain = c
	return nil
}

// checkpoint signs the head and stores it outside the chain, when it moved. The first records
// are checkpointed at once; then at most once an interval.
func (w *writer) checkpoint(ctx context.Context) {
	seq, hash := w.chain.Head()
	if seq == 0 || seq == w.checkpointedSeq {
		return
	}
	w.checkpointedAt = time.Now()
	cp, err := chain.SignCheckpoint(w.key, seq, hash, time.Now())
	if err != nil {
		w.log.Error("audit checkpoint", "err", err)
		return
	}
	b, _ := json.Marshal(cp)
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if _, err := w.checkpoints.Put(ctx, topology.CheckpointKey, b); err != nil {
		w.log.Warn("audit checkpoint not stored", "seq", seq, "err", err)
		return
	}
	w.checkpointedSeq = seq
}

func (w *writer) delay(attempt int) time.Duration {
	if len(w.backoff) == 0 {
		return time.Second
	}
	return w.backoff[min(attempt, len(w.backoff)-1)]
}

// deliveryOf parses m's reply subject once: its LOANS sequence and how many times the server
// has delivered it.
func deliveryOf(m jetstream.Msg) (seq, delivered uint64) {
	md, err := m.Metadata()
	if err != nil {
		return 0, 0
	}
	return md.Sequence.Stream, md.NumDelivered
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// subjectToken keeps the subject valid whatever the header held.
func subjectToken(searchID string) string {
	if len(searchID) > 128 {
		return ""
	}
	for i := 0; i < len(searchID); i++ {
		c := searchID[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return ""
		}
	}
	return searchID
}

// seqSet is a bounded set of sequences that forgets the oldest first.
type seqSet struct {
	ring []uint64
	next int
	full bool
	set  map[uint64]struct{}
}

func newSeqSet(n int) *seqSet {
	return &seqSet{ring: make([]uint64, max(n, 1)), set: make(map[uint64]struct{}, n)}
}

func (s *seqSet) has(seq uint64) bool { _, ok := s.set[seq]; return ok }
func (s *seqSet) capacity() int       { return len(s.ring) }

func (s *seqSet) add(seq uint64) {
	if s.has(seq) {
		return
	}
	if s.full {
		delete(s.set, s.ring[s.next])
	}
	s.ring[s.next] = seq
	s.set[seq] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
	s.full = s.full || s.next == 0
}

func (s *seqSet) reset() {
	clear(s.set)
	s.next, s.full = 0, false
}
