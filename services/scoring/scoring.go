// Package scoring decides each received application by a versioned policy and the client's
// profile, and publishes loan.application.scored.v1 with the decision and its reason codes.
package scoring

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/scoring/internal/policy"
	"github.com/loanflow/loanflow/services/scoring/internal/profile"
)

// Config is everything scoring reads from its environment.
type Config struct {
	Bus bus.Settings
	// PolicyFile is the policy YAML; empty uses the documented default policy.
	PolicyFile string `env:"LOANFLOW_POLICY_FILE"`
	// PhoneKey keys the phone hash client profiles are stored under (import only: the
	// service itself only ever sees hashes).
	PhoneKey string `env:"LOANFLOW_PHONE_KEY"`
	// AnswerDeadline is the time every application must be answered in; a referral's officer
	// has the policy's share of it.
	AnswerDeadline time.Duration `env:"LOANFLOW_ANSWER_DEADLINE" envDefault:"120s"`

	// Reload, when a value arrives, reloads the policy file; nil reloads on SIGHUP.
	Reload <-chan os.Signal `env:"-"`

	// Ops receives the service's metrics and readiness check; nil keeps them to the service.
	Ops         *admin.Ops    `env:"-"`
	Logger      *slog.Logger  `env:"-"`
	NATSOptions []nats.Option `env:"-"`
}

// loadedPolicy is a policy with the digest of the file it was read from.
type loadedPolicy struct {
	*policy.Policy
	// digest is the hex SHA-256 of the file's bytes, "built-in" for the default policy.
	digest string
}

// policy reads the policy file once, so that the digest is of the very bytes parsed.
func (c Config) policy() (*loadedPolicy, error) {
	if c.PolicyFile == "" {
		p, err := policy.Default()
		if err != nil {
			return nil, err
		}
		return &loadedPolicy{Policy: p, digest: "built-in"}, nil
	}
	data, err := os.ReadFile(c.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := policy.Parse(c.PolicyFile, data)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &loadedPolicy{Policy: p, digest: hex.EncodeToString(sum[:])}, nil
}

// Run scores applications until ctx ends. A policy that does not load stops it before it
// consumes anything.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "scoring")
	// SIGHUP is a reload from here on, before the policy is read and long before anything is
	// consumed: a SIGHUP sent during start-up is a reload once running, never the default
	// action that ends the process.
	reloads, stopSignals := service.Reloads(cfg.Reload)
	defer stopSignals()
	pol, err := cfg.policy()
	if err != nil {
		return fmt.Errorf("scoring policy: %w", err)
	}
	conn, err := bus.Open(ctx, cfg.Bus, "scoring", log, cfg.NATSOptions...)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, retry := conn.JS, cfg.Bus.Retry()
	if err := conn.EnsureConsumer(ctx, topology.ConsumerScoring, retry); err != nil {
		return err
	}
	clients, err := conn.EnsureBucket(ctx, topology.ClientsBucket(conn.Topology()))
	if err != nil {
		return err
	}
	pub := bus.NewPublisher(js, cfg.Bus.PublishTimeout)
	ops := cfg.Ops
	if ops == nil {
		ops = admin.NewOps()
	}
	reloadsDone := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loanflow_scoring_policy_reloads_total",
		Help: "Policy reloads, by result: reloaded, unchanged, invalid (the file does not load) or refused (a version already used, with other content).",
	}, []string{"result"})
	if err := ops.Registry.Register(reloadsDone); err != nil {
		// A second Run on the same registry (a test, a restart in one process) counts on.
		var already prometheus.AlreadyRegisteredError
		existing, ok := (*prometheus.CounterVec)(nil), errors.As(err, &already)
		if ok {
			existing, ok = already.ExistingCollector.(*prometheus.CounterVec)
		}
		if !ok {
			return fmt.Errorf("scoring metrics: %w", err)
		}
		reloadsDone = existing
	}
	s := &scorer{clients: clients, pub: pub, deadline: cfg.AnswerDeadline, log: log, reloads: reloadsDone,
		digests: map[string]string{pol.Version(): pol.digest}}
	if s.deadline <= 0 {
		s.deadline = 120 * time.Second
	}
	s.policy.Store(pol)
	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go service.ReloadOn(reloadCtx, reloads, func() { s.reload(cfg) })
	health := &bus.Health{}
	ops.Ready.Add("scoring", bus.ReadyCheck(conn.NC, js, health, []string{topology.StreamLoans}, "KV_"+clients.Bucket()))
	metrics, err := bus.NewMetrics(ops.Registry, js, topology.StreamLoans, topology.ConsumerScoring)
	if err != nil {
		return err
	}
	log.Info("scoring", "policy_version", pol.Version(), "policy_file", cfg.PolicyFile, "policy_sha256", pol.digest)
	return bus.Run(ctx, js, log, cfg.Bus.ShutdownTimeout, bus.Handler{
		Consumer: topology.ConsumerScoring, Stream: topology.StreamLoans, Concurrency: cfg.Bus.Concurrency, Retry: retry,
		Handle:   s.score,
		Failures: bus.Failures{Stage: "scoring", Retry: retry, Publisher: pub, Logger: log, Metrics: metrics},
		Health:   health,
		Metrics:  metrics,
	})
}

type scorer struct {
	// policy is swapped whole on reload: an event in hand finishes with the policy it started
	// with, and the next one takes the new one, so nothing is lost or decided half and half.
	policy   atomic.Pointer[loadedPolicy]
	clients  jetstream.KeyValue
	pub      *bus.Publisher
	deadline time.Duration
	log      *slog.Logger
	reloads  *prometheus.CounterVec
	// digests maps each policy version this process has run to its file's digest. Only the
	// reload loop reads and writes it after Run has started that loop.
	digests map[string]string
}

// reload loads the policy file again. A policy that does not load is logged with its errors
// and the current one stays. So does a policy whose version this process has already run with
// other content: a version names one set of rules, or the same application and version could
// get two decisions. Any change to the file's bytes, a comment's included, needs a new version.
func (s *scorer) reload(cfg Config) {
	cur := s.policy.Load()
	pol, err := cfg.policy()
	if err != nil {
		s.reloads.WithLabelValues("invalid").Inc()
		s.log.Error("policy reload failed; the current policy stays", "policy_version", cur.Version(), "err", err)
		return
	}
	if digest, seen := s.digests[pol.Version()]; seen && digest != pol.digest {
		s.reloads.WithLabelValues("refused").Inc()
		s.log.Error("policy reload refused: this version was already in use with other content; the current policy stays (give the changed policy a new version)",
			"policy_version", cur.Version(), "file_version", pol.Version(), "file_sha256", pol.digest, "version_sha256", digest)
		return
	}
	if pol.Version() == cur.Version() {
		s.reloads.WithLabelValues("unchanged").Inc()
		s.log.Info("policy reload: the file is unchanged", "policy_version", cur.Version(), "policy_sha256", cur.digest)
		return
	}
	s.digests[pol.Version()] = pol.digest
	s.policy.Store(pol)
	s.reloads.WithLabelValues("reloaded").Inc()
	s.log.Info("policy reloaded", "policy_version", pol.Version(), "previous_version", cur.Version(), "policy_sha256", pol.digest)
}

// score decides one application. It is idempotent: the same event gives the same decision,
// and the scored event's Nats-Msg-Id makes a repeat publish a no-op.
func (s *scorer) score(msg *message.Message) error {
	var ev events.ApplicationReceived
	if err := bus.Decode(msg, &ev); err != nil {
		return err
	}
	if ev.SearchID == "" || !ev.ProductType.Valid() {
		return bus.Permanent(errors.New("received event without search_id or with an unknown product_type"))
	}
	client, err := s.profile(msg.Context(), ev.PhoneHash)
	if err != nil {
		return err
	}
	d := s.policy.Load().Decide(policy.Application{ProductType: ev.ProductType, Amount: ev.Amount, Term: ev.Term}, client)
	if d.Referral != nil {
		return s.refer(msg, ev, client, d)
	}
	out, err := bus.NewEvent(events.TypeApplicationScored, ev.SearchID, bus.TraceOf(msg), events.ApplicationScored{
		SearchID:      ev.SearchID,
		ProductType:   ev.ProductType,
		Amount:        ev.Amount,
		Term:          ev.Term,
		Outcome:       d.Outcome,
		Approval:      d.Approval,
		Grade:         d.Grade,
		MaxAmount:     d.MaxAmount,
		MaxPayment:    d.MaxPayment,
		ReasonCodes:   d.ReasonCodes,
		PolicyVersion: d.PolicyVersion,
		ScoredAt:      time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	out.SetContext(msg.Context())
	return s.pub.Publish(events.TypeApplicationScored, out)
}

// refer sends the application to an officer: the referral carries what the policy saw and
// suggests, the bounds an officer decides within, and the fallback applied at DecideBy.
func (s *scorer) refer(msg *message.Message, ev events.ApplicationReceived, client *profile.Profile, d policy.Decision) error {
	now := time.Now().UTC()
	received := ev.ReceivedAt
	if received.IsZero() {
		received = now
	}
	share := time.Duration(float64(s.deadline) * d.Referral.DeadlineShare)
	out, err := bus.NewEvent(events.TypeApplicationReferred, ev.SearchID, bus.TraceOf(msg), events.ApplicationReferred{
		SearchID:    ev.SearchID,
		ProductType: ev.ProductType,
		Amount:      ev.Amount,
		Term:        ev.Term,
		PhoneHash:   ev.PhoneHash,
		PhoneMask:   ev.PhoneMask,
		Client: &events.ClientFigures{
			MonthlyIncome: client.MonthlyIncome, MonthlyDebtPayments: client.MonthlyDebtPayments,
			BureauGrade: client.BureauGrade, ClientSince: client.ClientSince, SalaryClient: client.SalaryClient,
		},
		Suggested:     events.Proposal{Outcome: d.Outcome, Approval: d.Approval, Grade: d.Grade, MaxAmount: d.MaxAmount, MaxPayment: d.MaxPayment},
		MinAmount:     d.Referral.MinAmount,
		MaxAmount:     d.Referral.MaxAmount,
		Fallback:      d.Referral.Fallback,
		ReasonCodes:   d.ReasonCodes,
		PolicyVersion: d.PolicyVersion,
		ReceivedAt:    received,
		ReferredAt:    now,
		DecideBy:      received.Add(share),
	})
	if err != nil {
		return err
	}
	out.SetContext(msg.Context())
	return s.pub.Publish(events.TypeApplicationReferred, out)
}

// profile returns the client's profile, or nil when the bank does not know the client.
func (s *scorer) profile(ctx context.Context, phoneHash string) (*profile.Profile, error) {
	if phoneHash == "" {
		return nil, nil
	}
	e, err := s.clients.Get(ctx, phoneHash)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client profile: %w", err)
	}
	var p profile.Profile
	err = json.Unmarshal(e.Value(), &p)
	if err == nil {
		err = p.Validate()
	}
	if err != nil {
		// A profile the service cannot read is the bank's data problem, not the event's:
		// retrying will not fix it, so the application fails and is looked into.
		return nil, bus.Permanent(fmt.Errorf("client profile is invalid: %w", err))
	}
	return &p, nil
}

// ImportStats sums up one import.
type ImportStats = profile.Stats

// Import loads a client file (CSV or JSON Lines, by extension) into the clients bucket under
// keyed hashes of the phone numbers. Bad lines are skipped; each is written to out as it is
// found ("FILE: line N: reason", the reason never holding a value of the line), and so is the
// progress: lines and bytes read (a percentage of the file's size), every
// importProgressLines lines or importProgressInterval, whichever comes first, and at the end.
// out may be nil.
func Import(ctx context.Context, cfg Config, path string, out io.Writer) (ImportStats, error) {
	hasher, err := pseudonym.New([]byte(cfg.PhoneKey))
	if err != nil {
		return ImportStats{}, fmt.Errorf("LOANFLOW_PHONE_KEY: %w", err)
	}
	format, err := profile.FormatFromPath(path)
	if err != nil {
		return ImportStats{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return ImportStats{}, err
	}
	defer f.Close()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Open as the service does: its credentials, and declarations retried while a cluster
	// is still electing its leaders.
	conn, err := bus.Open(ctx, cfg.Bus, "scoring-import", log, cfg.NATSOptions...)
	if err != nil {
		return ImportStats{}, err
	}
	defer conn.Close()
	kv, err := conn.EnsureBucket(ctx, topology.ClientsBucket(conn.Topology()))
	if err != nil {
		return ImportStats{}, err
	}
	rep := newImportReport(out, path, f)
	stats, err := profile.ReadWith(f, format, hasher, func(e profile.Entry) error {
		b, err := json.Marshal(e.Profile)
		if err != nil {
			return err
		}
		if _, err := kv.Put(ctx, e.Key, b); err != nil {
			return fmt.Errorf("line %d: store profile: %w", e.Line, err)
		}
		rep.imported++
		return nil
	}, profile.Options{Rejected: rep.rejected, Progress: rep.progress})
	if err != nil {
		return stats, err
	}
	rep.done()
	return stats, conn.NC.Flush()
}

// Import reports progress every importProgressLines lines, or sooner once
// importProgressInterval has passed since the last report (a slow bucket, a slow disk).
const (
	importProgressLines    = 10_000
	importProgressInterval = time.Second
)

// importReport writes an import's bad lines and progress as the file is read.
type importReport struct {
	out      io.Writer
	path     string
	size     int64 // of the file, 0 when not known (not a regular file)
	start    time.Time
	last     time.Time // of the last progress line
	nextLine int       // the line the next progress line is due at
	pos      profile.Position
	shown    profile.Position // in the last progress line
	imported int
	bad      int
}

func newImportReport(out io.Writer, path string, f *os.File) *importReport {
	r := &importReport{out: out, path: path, start: time.Now(), nextLine: importProgressLines}
	r.last = r.start
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		r.size = fi.Size()
	}
	return r
}

func (r *importReport) rejected(e profile.LineError) {
	r.bad++
	if r.out != nil {
		fmt.Fprintf(r.out, "%s: %v\n", r.path, e)
	}
}

func (r *importReport) progress(p profile.Position) {
	r.pos = p
	if r.out == nil {
		return
	}
	if p.Line >= r.nextLine {
		r.nextLine = (p.Line/importProgressLines + 1) * importProgressLines
		r.print()
		return
	}
	if time.Since(r.last) >= importProgressInterval {
		r.print()
	}
}

// done writes the last progress line, unless the last one written was already at the end.
func (r *importReport) done() {
	if r.out != nil && (r.pos != r.shown || r.shown.Line == 0) {
		r.print()
	}
}

func (r *importReport) print() {
	now := time.Now()
	r.last, r.shown = now, r.pos
	read := byteSize(r.pos.Bytes)
	if r.size > 0 {
		read = fmt.Sprintf("%s of %s (%.0f%%)", read, byteSize(r.size), 100*float64(r.pos.Bytes)/float64(r.size))
	}
	rate := float64(r.pos.Line) / max(now.Sub(r.start).Seconds(), 1e-3)
	fmt.Fprintf(r.out, "%s: %d lines, %s read, %d imported, %d bad (%.0f lines/s)\n", r.path, r.pos.Line, read, r.imported, r.bad, rate)
}

// byteSize writes n bytes in the largest unit that keeps it at least 1.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
