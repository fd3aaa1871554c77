// Package offers is offer assembly: it turns scored applications into the partner API's
// offers from the product catalog, writes the final answer to the loan_decisions bucket for
// ingress to serve, and publishes loan.decision.made.v1.
package offers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loanflow/loanflow/contracts/decisions"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/services/offers/internal/catalog"
)

// Config is everything offer assembly reads from its environment.
type Config struct {
	Bus bus.Settings
	// CatalogFile is the product catalog YAML; empty uses the documented default catalog.
	CatalogFile string `env:"LOANFLOW_CATALOG_FILE"`

	// Ops receives the service's metrics and readiness check; nil keeps them to the service.
	Ops         *admin.Ops    `env:"-"`
	Logger      *slog.Logger  `env:"-"`
	NATSOptions []nats.Option `env:"-"`
}

func (c Config) catalog() (*catalog.Catalog, error) {
	if c.CatalogFile == "" {
		return catalog.Default()
	}
	return catalog.Load(c.CatalogFile)
}

// Run assembles answers until ctx ends. A catalog that does not load stops it before it
// consumes anything.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "offers")
	cat, err := cfg.catalog()
	if err != nil {
		return fmt.Errorf("offers catalog: %w", err)
	}
	conn, err := bus.Open(ctx, cfg.Bus, "offers", log, cfg.NATSOptions...)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, retry := conn.JS, cfg.Bus.Retry()
	if err := conn.EnsureConsumer(ctx, topology.ConsumerOffers, retry); err != nil {
		return err
	}
	kv, err := conn.EnsureBucket(ctx, topology.DecisionsBucket(conn.Topology()))
	if err != nil {
		return err
	}
	pub := bus.NewPublisher(js, cfg.Bus.PublishTimeout)
	ops := cfg.Ops
	if ops == nil {
		ops = admin.NewOps()
	}
	decided := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loanflow_decisions_total",
		Help: "Answers decided, by product type and decision (has_approve or rejected).",
	}, []string{"product_type", "decision"})
	if err := ops.Registry.Register(decided); err != nil {
		return fmt.Errorf("offers metrics: %w", err)
	}
	health := &bus.Health{}
	ops.Ready.Add("offers", bus.ReadyCheck(conn.NC, js, health, topology.StreamLoans, "KV_"+kv.Bucket()))
	metrics, err := bus.NewMetrics(ops.Registry, js, topology.StreamLoans, topology.ConsumerOffers)
	if err != nil {
		return err
	}
	a := &assembler{catalog: cat, kv: kv, pub: pub, decided: decided}
	log.Info("offer assembly", "catalog_version", cat.Version())
	return bus.Run(ctx, js, log, cfg.Bus.ShutdownTimeout, bus.Handler{
		Consumer: topology.ConsumerOffers, Stream: topology.StreamLoans, Concurrency: cfg.Bus.Concurrency, Retry: retry,
		Handle:   a.assemble,
		Failures: bus.Failures{Stage: "offers", Retry: retry, Publisher: pub, Logger: log, Metrics: metrics},
		Health:   health,
		Metrics:  metrics,
	})
}

type assembler struct {
	catalog *catalog.Catalog
	kv      jetstream.KeyValue
	pub     *bus.Publisher
	decided *prometheus.CounterVec
}

// assemble answers one scored application, or one an officer decided. The answer goes to the
// bucket before the event is published and the message acked; a redelivery finds the answer
// final and only publishes the event again (deduplicated), so nothing is decided twice.
func (a *assembler) assemble(msg *message.Message) error {
	ctx := msg.Context()
	ev, err := decodeApproval(msg)
	if err != nil {
		return err
	}
	if ev.SearchID == "" || !ev.ProductType.Valid() {
		return bus.Permanent(errors.New("scored event without search_id or with an unknown product_type"))
	}
	made := a.decide(ev)
	rec, err := a.store(ctx, ev.SearchID, made)
	if err != nil {
		return err
	}
	if rec.Status != decisions.StatusDone || rec.Answer == nil {
		return nil // failed meanwhile: the failure stands, nothing to announce
	}
	// Announce what the bucket holds, which is this decision unless an earlier delivery
	// already stored one.
	made.Decision, made.Offers = rec.Answer.Decision, rec.Answer.Data
	out, err := bus.NewEvent(events.TypeDecisionMade, ev.SearchID, bus.TraceOf(msg), made)
	if err != nil {
		return err
	}
	out.SetContext(ctx)
	return a.pub.Publish(events.TypeDecisionMade, out)
}

// decodeApproval reads the event the answer is made from: a scored application, or an
// underwriting decision, which carries the same terms decided by an officer or the fallback.
func decodeApproval(msg *message.Message) (events.ApplicationScored, error) {
	var ev events.ApplicationScored
	if msg.Metadata.Get(bus.MetaSubject) != events.TypeUnderwritingDecided {
		return ev, bus.Decode(msg, &ev)
	}
	var u events.UnderwritingDecided
	if err := bus.Decode(msg, &u); err != nil {
		return ev, err
	}
	return events.ApplicationScored{
		SearchID: u.SearchID, ProductType: u.ProductType, Amount: u.Amount, Term: u.Term,
		Outcome: u.Decision.Outcome, Approval: u.Decision.Approval, Grade: u.Decision.Grade,
		MaxAmount: u.Decision.MaxAmount, ReasonCodes: u.ReasonCodes, PolicyVersion: u.PolicyVersion,
		ScoredAt: u.DecidedAt,
	}, nil
}

// count adds a decision this delivery stored (never a redelivery's) to the metrics.
func (a *assembler) count(made events.DecisionMade) {
	if a.decided != nil {
		a.decided.WithLabelValues(string(made.ProductType), string(made.Decision)).Inc()
	}
}

// decide is the pure part: the catalog's offers for the scored application.
func (a *assembler) decide(ev events.ApplicationScored) events.DecisionMade {
	decision, offers := a.catalog.Assemble(catalog.Input{
		SearchID:    ev.SearchID,
		ProductType: ev.ProductType,
		Approved:    ev.Outcome == events.OutcomeApproved,
		Approval:    ev.Approval,
		Grade:       ev.Grade,
		MaxAmount:   ev.MaxAmount,
		Amount:      ev.Amount,
		Term:        ev.Term,
	})
	reasons := slices.Clone(ev.ReasonCodes)
	if ev.Outcome == events.OutcomeApproved && decision == partnerapi.DecisionRejected {
		reasons = append(reasons, catalog.ReasonNoMatchingProduct)
	}
	if decision == partnerapi.DecisionRejected {
		offers = nil
	}
	return events.DecisionMade{
		SearchID:       ev.SearchID,
		ProductType:    ev.ProductType,
		Decision:       decision,
		Offers:         offers,
		ReasonCodes:    reasons,
		PolicyVersion:  ev.PolicyVersion,
		CatalogVersion: a.catalog.Version(),
		DecidedAt:      time.Now().UTC(),
	}
}

// store writes the final answer unless the record is already final, and returns the record as
// it stands afterwards.
func (a *assembler) store(ctx context.Context, searchID string, made events.DecisionMade) (decisions.Record, error) {
	answer := &partnerapi.DoneAnswer{
		SearchID: searchID, Status: partnerapi.StatusDone, Name: a.catalog.BankName(),
		Decision: made.Decision, Data: made.Offers,
	}
	for range 10 {
		var rec decisions.Record
		entry, err := a.kv.Get(ctx, searchID)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			// Ingress records every application before publishing it; an event without a
			// record still gets its answer.
			now := time.Now().UTC()
			rec = decisions.Record{SearchID: searchID, Status: decisions.StatusDone, Answer: answer, CreatedAt: now, UpdatedAt: now}
			b, _ := json.Marshal(rec)
			if _, err := a.kv.Create(ctx, searchID, b); err == nil {
				a.count(made)
				return rec, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return rec, fmt.Errorf("store answer %s: %w", searchID, err)
			}
			continue
		case err != nil:
			return rec, fmt.Errorf("read record %s: %w", searchID, err)
		}
		if err := json.Unmarshal(entry.Value(), &rec); err != nil {
			return rec, bus.Permanent(fmt.Errorf("record %s does not decode: %w", searchID, err))
		}
		if rec.Final() {
			return rec, nil
		}
		rec.Status, rec.Answer, rec.UpdatedAt = decisions.StatusDone, answer, time.Now().UTC()
		b, _ := json.Marshal(rec)
		if _, err := a.kv.Update(ctx, searchID, b, entry.Revision()); err == nil {
			a.count(made)
			return rec, nil
		} else if !isWrongRevision(err) {
			return rec, fmt.Errorf("store answer %s: %w", searchID, err)
		}
	}
	return decisions.Record{}, fmt.Errorf("store answer %s: record kept changing", searchID)
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
