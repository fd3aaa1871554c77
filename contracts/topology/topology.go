// Package topology names loanflow's JetStream streams, subjects, durable consumers and KV
// buckets, and declares them. Services create what they use idempotently at start-up from
// these declarations (never from an adapter's defaults); a provisioning command can create
// them all ahead of time with an admin identity.
package topology

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
)

// Streams.
const (
	// StreamLoans holds every loan.> event of the pipeline.
	StreamLoans = "LOANS"
	// StreamAudit holds the hash-chained audit records, one subject per search_id.
	StreamAudit = "AUDIT"
	// StreamDeadLetter holds a copy of every event a stage gave up on, with the reason.
	StreamDeadLetter = "DEADLETTER"
)

// Subjects.
const (
	// SubjectLoans is every pipeline event; each event type is its own subject below it.
	SubjectLoans = "loan.>"
	// AuditSubjectPrefix starts every audit record's subject; the search_id follows.
	AuditSubjectPrefix = "audit.v1."
	// SubjectAudit is every audit record.
	SubjectAudit = AuditSubjectPrefix + ">"
	// DeadLetterPrefix starts a dead letter's subject; the stage that gave up follows.
	DeadLetterPrefix = "deadletter."
	// AuditNoSearchID stands in the subject of a record whose event carried no search_id.
	AuditNoSearchID = "_none"
)

// AuditSubject is the subject of the audit records of one application.
func AuditSubject(searchID string) string {
	if searchID == "" {
		searchID = AuditNoSearchID
	}
	return AuditSubjectPrefix + searchID
}

// KV buckets.
const (
	// BucketDecisions holds one decisions.Record per search_id: the answer ingress serves.
	BucketDecisions = "loan_decisions"
	// BucketClients holds one client profile per keyed hash of a phone number.
	BucketClients = "clients"
	// BucketAuditCheckpoints holds the signed checkpoints of the audit chain, outside it.
	BucketAuditCheckpoints = "audit_checkpoints"
	// CheckpointKey is the key of the latest checkpoint; history keeps the earlier ones.
	CheckpointKey = "latest"
	// BucketUnderwriting holds one underwriting case per referred search_id: who took it and
	// how it was decided, so that two officers cannot decide the same application.
	BucketUnderwriting = "underwriting"
	// BucketConsoleRevocations holds the console sessions signed out before they expire, so
	// that every console replica, and a console restarted with the same session key, refuses
	// them. Each is kept as long as its session could still be presented (a per-key TTL).
	BucketConsoleRevocations = "console_revocations"
)

// Durable consumers.
const (
	ConsumerScoring  = "scoring"          // LOANS, loan.application.received.v1
	ConsumerOffers   = "offers"           // LOANS, loan.application.scored.v1 and loan.underwriting.decided.v1
	ConsumerAudit    = "audit"            // LOANS, loan.>
	ConsumerFailures = "ingress-failures" // LOANS, loan.application.failed.v1: marks the answer failed
	ConsumerDeadline = "ingress-deadline" // LOANS, loan.application.received.v1: fails what is undecided in time
	ConsumerConsole  = "console"          // LOANS, loan.application.referred.v1: the underwriting queue
)

// Options sizes the declarations for a deployment.
type Options struct {
	// Replicas is 1 for the embedded single server and 3 on a cluster.
	Replicas int
	// Storage is file storage everywhere but in throw-away tests.
	Storage jetstream.StorageType
	// LoansMaxAge bounds how long pipeline events are kept.
	LoansMaxAge time.Duration
	// AuditMaxAge bounds how long audit records are kept (5 years by default).
	AuditMaxAge time.Duration
	// DecisionsTTL bounds how long an answer can be polled and an application repeated.
	DecisionsTTL time.Duration
}

// DefaultOptions are the single-server defaults.
func DefaultOptions() Options {
	return Options{
		Replicas:     1,
		Storage:      jetstream.FileStorage,
		LoansMaxAge:  7 * 24 * time.Hour,
		AuditMaxAge:  5 * 365 * 24 * time.Hour,
		DecisionsTTL: 7 * 24 * time.Hour,
	}
}

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. Longer horizons are covered
// by the decisions bucket, keyed by search_id.
const DuplicateWindow = 2 * time.Minute

// LoansStream declares the LOANS stream.
func LoansStream(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamLoans,
		Description: "loanflow pipeline events",
		Subjects:    []string{SubjectLoans},
		Retention:   jetstream.LimitsPolicy, // several consumers and replays read it
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.LoansMaxAge,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  DuplicateWindow,
	}
}

// AuditStream declares the AUDIT stream: nothing in it may be deleted or purged.
func AuditStream(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamAudit,
		Description: "loanflow audit records, hash-chained",
		Subjects:    []string{SubjectAudit},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew, // never silently drop the chain's head
		MaxAge:      o.AuditMaxAge,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  DuplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
}

// DeadLetterStream declares the DEADLETTER stream: events no retry could process, kept for
// operators to inspect and, once the cause is fixed, to publish again.
func DeadLetterStream(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDeadLetter,
		Description: "loanflow events a stage gave up on",
		Subjects:    []string{DeadLetterPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.LoansMaxAge,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  DuplicateWindow,
	}
}

// DecisionsBucket declares the loan_decisions bucket.
func DecisionsBucket(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      BucketDecisions,
		Description: "loanflow answers by search_id",
		History:     1,
		TTL:         o.DecisionsTTL,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
	}
}

// ClientsBucket declares the clients bucket.
func ClientsBucket(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      BucketClients,
		Description: "client profiles by keyed hash of the phone number",
		History:     1,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
	}
}

// UnderwritingBucket declares the underwriting bucket. Its history keeps a case's steps.
func UnderwritingBucket(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      BucketUnderwriting,
		Description: "loanflow manual underwriting cases by search_id",
		History:     16,
		TTL:         o.DecisionsTTL,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
	}
}

// ConsoleRevocationsBucket declares the console_revocations bucket. It has no bucket-wide
// TTL: the console writes each revocation with its session's remaining lifetime as the key's
// TTL (LimitMarkerTTL enables per-key TTLs), so the declaration need not know the console's
// session TTL.
func ConsoleRevocationsBucket(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         BucketConsoleRevocations,
		Description:    "console sessions signed out before they expire",
		History:        1,
		LimitMarkerTTL: time.Minute,
		Storage:        o.Storage,
		Replicas:       o.Replicas,
	}
}

// AuditCheckpointsBucket declares the audit_checkpoints bucket.
func AuditCheckpointsBucket(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      BucketAuditCheckpoints,
		Description: "signed checkpoints of the AUDIT chain",
		History:     64,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
	}
}

// Retry is a consumer's redelivery policy. Deliveries past MaxDeliver are never attempted:
// the stage emits loan.application.failed.v1 and terminates the message instead.
type Retry struct {
	// MaxDeliver is how many times one message is handed to the stage, first try included.
	MaxDeliver int
	// BackOff is the delay before each redelivery after a failed attempt; the last value
	// repeats.
	BackOff []time.Duration
	// AckWait is how long the server waits for an ack before redelivering on its own.
	AckWait time.Duration
	// MaxAckPending bounds the messages in flight across every replica of the stage.
	MaxAckPending int
}

// DefaultRetry is five deliveries spread over about twenty seconds.
func DefaultRetry() Retry {
	return Retry{
		MaxDeliver:    5,
		BackOff:       []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second},
		AckWait:       30 * time.Second,
		MaxAckPending: 1024,
	}
}

// Delay is the back-off before redelivery after the given delivery (1-based) failed.
func (r Retry) Delay(delivered uint64) time.Duration {
	if len(r.BackOff) == 0 {
		return 0
	}
	i := int(delivered) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(r.BackOff) {
		i = len(r.BackOff) - 1
	}
	return r.BackOff[i]
}

type consumerDecl struct {
	stream      string
	filters     []string
	description string
}

// ConsoleMaxAckPending is the console consumer's least MaxAckPending. The console holds each
// referral un-acked until its decide_by (up to the 2-minute answer deadline), so the referrals
// in flight are the referral rate times that hold: 1024 would stall referrals past about 11/s
// until older ones are decided, and later ones would reach the queue after their deadline.
// 65 536 holds over 500/s for two minutes; a pending message costs the server a few dozen bytes.
const ConsoleMaxAckPending = 65536

var consumerDecls = map[string]consumerDecl{
	ConsumerScoring:  {StreamLoans, []string{events.TypeApplicationReceived}, "scoring: decides received applications"},
	ConsumerOffers:   {StreamLoans, []string{events.TypeApplicationScored, events.TypeUnderwritingDecided}, "offers: assembles answers from scored applications and underwriting decisions"},
	ConsumerAudit:    {StreamLoans, []string{SubjectLoans}, "audit: records every pipeline event"},
	ConsumerFailures: {StreamLoans, []string{events.TypeApplicationFailed}, "ingress: marks failed applications"},
	ConsumerDeadline: {StreamLoans, []string{events.TypeApplicationReceived}, "ingress: fails applications undecided at the answer deadline"},
	ConsumerConsole:  {StreamLoans, []string{events.TypeApplicationReferred}, "console: queues referred applications for underwriting"},
}

// Filters returns the subjects the named consumer reads, or nil for an unknown name.
func Filters(name string) []string {
	return append([]string(nil), consumerDecls[name].filters...)
}

// Consumer declares the durable consumer name and returns the stream it reads.
func Consumer(name string, r Retry) (stream string, cfg jetstream.ConsumerConfig, err error) {
	d, ok := consumerDecls[name]
	if !ok {
		return "", cfg, fmt.Errorf("topology: no consumer named %q", name)
	}
	cfg = jetstream.ConsumerConfig{
		Durable:       name,
		Description:   d.description,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.AckWait,
		MaxDeliver:    r.MaxDeliver,
		MaxAckPending: r.MaxAckPending,
	}
	if name == ConsumerConsole {
		cfg.MaxAckPending = max(cfg.MaxAckPending, ConsoleMaxAckPending)
	}
	// One subject stays in FilterSubject, so that consumers declared before multi-filter
	// consumers existed are not updated needlessly.
	if len(d.filters) == 1 {
		cfg.FilterSubject = d.filters[0]
	} else {
		cfg.FilterSubjects = append([]string(nil), d.filters...)
	}
	return d.stream, cfg, nil
}

// ConsumerNames lists every durable consumer.
func ConsumerNames() []string {
	return []string{ConsumerScoring, ConsumerOffers, ConsumerAudit, ConsumerFailures, ConsumerDeadline, ConsumerConsole}
}
