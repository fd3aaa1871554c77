// Package audit records every loan.> event into the AUDIT stream as a hash-chained record with
// no clear personal data, checkpoints the chain with a signature, and reads it back for
// compliance: replay, verify and export.
package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

// Config is everything the audit service reads from its environment.
type Config struct {
	Bus bus.Settings
	// PhoneKey keys the hash that replaces any phone number found in an event, and the one
	// replay --phone looks a client up by.
	PhoneKey string `env:"LOANFLOW_PHONE_KEY"`
	// SigningKey is the base64 Ed25519 seed checkpoints are signed with.
	SigningKey string `env:"LOANFLOW_AUDIT_SIGNING_KEY"`
	// CheckpointInterval is how often the chain's head is checkpointed while it grows.
	CheckpointInterval time.Duration `env:"LOANFLOW_AUDIT_CHECKPOINT_INTERVAL" envDefault:"10s"`
	// Batch is how many events are appended per round trip: the chain scales by batching.
	Batch int `env:"LOANFLOW_AUDIT_BATCH" envDefault:"256"`

	// Ops receives the chain's metrics and the readiness check; nil keeps them to the service.
	Ops         *admin.Ops    `env:"-"`
	Logger      *slog.Logger  `env:"-"`
	NATSOptions []nats.Option `env:"-"`
}

func (c Config) keys() (*pseudonym.Hasher, ed25519.PrivateKey, error) {
	hasher, err := pseudonym.New([]byte(c.PhoneKey))
	if err != nil {
		return nil, nil, fmt.Errorf("LOANFLOW_PHONE_KEY: %w", err)
	}
	if c.SigningKey == "" {
		return nil, nil, errors.New("LOANFLOW_AUDIT_SIGNING_KEY: required (base64 Ed25519 seed)")
	}
	key, err := chain.ParseSigningKey(c.SigningKey)
	if err != nil {
		return nil, nil, fmt.Errorf("LOANFLOW_AUDIT_SIGNING_KEY: %w", err)
	}
	return hasher, key, nil
}

// Run records events until ctx ends; then it finishes the batch in hand, writes a final
// checkpoint and drains.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "audit")
	hasher, key, err := cfg.keys()
	if err != nil {
		return fmt.Errorf("audit config: %w", err)
	}
	conn, err := bus.Open(ctx, cfg.Bus, "audit", log, cfg.NATSOptions...)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, retry := conn.JS, cfg.Bus.AuditRetry()
	if err := conn.EnsureConsumer(ctx, topology.ConsumerAudit, retry); err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, topology.StreamLoans, topology.ConsumerAudit)
	if err != nil {
		return fmt.Errorf("audit consumer: %w", err)
	}
	checkpoints, err := conn.EnsureBucket(ctx, topology.AuditCheckpointsBucket(conn.Topology()))
	if err != nil {
		return err
	}
	w := &writer{
		js: js, hasher: hasher, log: log, key: key, checkpoints: checkpoints,
		timeout: cfg.Bus.PublishTimeout, interval: cfg.CheckpointInterval,
		batch:   min(max(cfg.Batch, 1), retry.MaxAckPending),
		backoff: retry.BackOff,
		// Redeliveries can only be of events in flight, at most MaxAckPending of them.
		recent: newSeqSet(2 * retry.MaxAckPending),
	}
	if err := w.resync(ctx); err != nil {
		return err
	}
	ops := cfg.Ops
	if ops == nil {
		ops = admin.NewOps()
	}
	if err := ops.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "loanflow_audit_chain_length",
		Help: "Records in the audit chain: the sequence of its head as this writer last stored or read it.",
	}, func() float64 { return float64(w.head.Load()) })); err != nil {
		return fmt.Errorf("audit metrics: %w", err)
	}
	// The writer reads its consumer directly, not through bus.Run: it counts its redeliveries
	// itself, on the same counters as the stages.
	if w.metrics, err = bus.NewMetrics(ops.Registry, js, topology.StreamLoans, topology.ConsumerAudit); err != nil {
		return err
	}
	// LOANS is proven by the audit consumer's CONSUMER.INFO below (bus.ReadyCheck has no
	// subscription of this writer's to ask it of).
	streamReady := bus.ReadyCheck(conn.NC, js, nil, nil, topology.StreamAudit, "KV_"+checkpoints.Bucket())
	ops.Ready.Add("audit", func(ctx context.Context) error {
		if err := streamReady(ctx); err != nil {
			return err
		}
		if _, err := js.Consumer(ctx, topology.StreamLoans, topology.ConsumerAudit); err != nil {
			return fmt.Errorf("consumer %s: %w", topology.ConsumerAudit, err)
		}
		return nil
	})
	seq, _ := w.chain.Head()
	log.Info("audit recording", "head_seq", seq, "batch", w.batch)
	return w.run(ctx, cons)
}
