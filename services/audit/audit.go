// Package audit records every loan.> event into the AUDIT stream as a hash-chained record with
// no clear personal data, and reads the records back for compliance (replay).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

// Config is everything the audit service reads from its environment.
type Config struct {
	Bus bus.Settings
	// PhoneKey keys the hash that replaces any phone number found in an event.
	PhoneKey string `env:"LOANFLOW_PHONE_KEY"`

	Logger      *slog.Logger  `env:"-"`
	NATSOptions []nats.Option `env:"-"`
}

// Run records events until ctx ends, then finishes the event in hand and drains.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "audit")
	hasher, err := pseudonym.New([]byte(cfg.PhoneKey))
	if err != nil {
		return fmt.Errorf("audit config: LOANFLOW_PHONE_KEY: %w", err)
	}
	conn, err := bus.Open(ctx, cfg.Bus, "audit", log, cfg.NATSOptions...)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, retry := conn.JS, cfg.Bus.AuditRetry()
	if err := bus.EnsureConsumer(ctx, js, topology.ConsumerAudit, retry); err != nil {
		return err
	}
	w := &writer{js: js, hasher: hasher, log: log, timeout: cfg.Bus.PublishTimeout}
	if err := w.resync(ctx); err != nil {
		return err
	}
	log.Info("audit recording", "head_seq", w.headSeq())
	return bus.Run(ctx, js, log, cfg.Bus.ShutdownTimeout, bus.Handler{
		// One chain, one writer at a time: records are appended in order.
		Consumer: topology.ConsumerAudit, Stream: topology.StreamLoans, Concurrency: 1, Retry: retry,
		Handle:   w.record,
		Failures: bus.Failures{Stage: chain.StageAudit, Retry: retry, Logger: log},
	})
}

// writer appends records to the chain. Its head mirrors the AUDIT stream's last record; any
// doubt (a failed or duplicate publish) re-reads it from the stream.
type writer struct {
	js      jetstream.JetStream
	hasher  *pseudonym.Hasher
	log     *slog.Logger
	timeout time.Duration

	mu    sync.Mutex
	chain *chain.Chain
}

func (w *writer) headSeq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, _ := w.chain.Head()
	return s
}

// resync reads the chain's head from the stream's last record.
func (w *writer) resync(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.resyncLocked(ctx)
}

// Head returns the sequence and hash of the AUDIT stream's last record (0 and the genesis hash
// for an empty stream).
func Head(ctx context.Context, js jetstream.JetStream) (uint64, string, error) {
	s, err := js.Stream(ctx, topology.StreamAudit)
	if err != nil {
		return 0, "", fmt.Errorf("audit stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("audit stream info: %w", err)
	}
	if info.State.LastSeq == 0 {
		return 0, chain.GenesisHash, nil
	}
	raw, err := s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return 0, "", fmt.Errorf("audit head %d: %w", info.State.LastSeq, err)
	}
	rec, err := chain.ParseRecord(raw.Data)
	if err != nil {
		return 0, "", fmt.Errorf("audit head %d: %w", info.State.LastSeq, err)
	}
	return rec.Seq, rec.Hash, nil
}

// record appends one event to the chain. The publish expects the stream's last sequence to be
// the chain's head, so two writers can never fork the chain, and carries a Nats-Msg-Id derived
// from the event's LOANS sequence, so a redelivered event is not recorded twice.
func (w *writer) record(msg *message.Message) error {
	ctx := msg.Context()
	sourceSeq, _ := strconv.ParseUint(msg.Metadata.Get(bus.MetaStreamSeq), 10, 64)
	eventType := msg.Metadata.Get(events.HeaderEventType)
	if eventType == "" {
		eventType = msg.Metadata.Get(bus.MetaSubject)
	}
	payload, err := chain.Pseudonymise(msg.Payload, w.hasher)
	if err != nil {
		// Not JSON: record that it existed and what it hashed to, never its bytes (they could
		// hold anything, a phone number included).
		sum := sha256.Sum256(msg.Payload)
		payload, _ = json.Marshal(map[string]any{"undecodable": true, "bytes": len(msg.Payload), "sha256": hex.EncodeToString(sum[:])})
	}
	searchID := msg.Metadata.Get(events.HeaderSearchID)

	w.mu.Lock()
	defer w.mu.Unlock()
	rec, err := w.chain.Append(chain.Record{
		Time:          time.Now().UTC(),
		EventType:     eventType,
		SearchID:      searchID,
		Stage:         chain.StageOf(eventType, payload),
		CorrelationID: msg.Metadata.Get(events.HeaderCorrelationID),
		SourceSeq:     sourceSeq,
		Payload:       payload,
	})
	if err != nil {
		return bus.Permanent(fmt.Errorf("seal audit record: %w", err))
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	ack, err := w.js.PublishMsg(pctx, &nats.Msg{Subject: topology.AuditSubject(auditKey(searchID)), Data: b},
		jetstream.WithExpectLastSequence(rec.Seq-1),
		jetstream.WithMsgID("audit:"+strconv.FormatUint(sourceSeq, 10)))
	if err != nil || ack.Duplicate || ack.Sequence != rec.Seq {
		// The head did not move as this writer thought (a lost ack, a redelivered event
		// already recorded, another writer): read it again before the next record.
		if rerr := w.resyncLocked(context.WithoutCancel(ctx)); rerr != nil {
			w.log.Error("audit head resync failed", "err", rerr)
		}
		if err != nil {
			return fmt.Errorf("append audit record %d: %w", rec.Seq, err)
		}
	}
	return nil
}

func (w *writer) resyncLocked(ctx context.Context) error {
	seq, hash, err := Head(ctx, w.js)
	if err != nil {
		return err
	}
	c, err := chain.NewChain(seq, hash)
	if err != nil {
		return err
	}
	w.chain = c
	return nil
}

// auditKey keeps the subject valid whatever the header held.
func auditKey(searchID string) string {
	for i := 0; i < len(searchID); i++ {
		c := searchID[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return ""
		}
	}
	if len(searchID) > 128 {
		return ""
	}
	return searchID
}
