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
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
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
	"github.com/loanflow/loanflow/pkg/offerlink"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/offers/internal/catalog"
)

// Config is everything offer assembly reads from its environment.
type Config struct {
	Bus bus.Settings
	// CatalogFile is the product catalog YAML; empty uses the documented default catalog.
	CatalogFile string `env:"LOANFLOW_CATALOG_FILE"`
	// LinkKeys sign the proposal links' tokens (comma-separated, at least 16 bytes each; the
	// first signs, ingress verifies with any): the same list as ingress's.
	LinkKeys string `env:"LOANFLOW_LINK_KEYS"`
	// PublicURL is ingress's public address, which proposal links point at (/offers/<token>):
	// https in production, as Yandex's contract requires. Required.
	PublicURL string `env:"LOANFLOW_PUBLIC_URL"`
	// LinkTTL is how long a proposal link works.
	LinkTTL time.Duration `env:"LOANFLOW_LINK_TTL" envDefault:"24h"`

	// Reload, when a value arrives, reloads the catalog file; nil reloads on SIGHUP.
	Reload <-chan os.Signal `env:"-"`

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
	// SIGHUP is a reload from here on, before the catalog is read: one sent during start-up
	// is a reload once running, never the default action that ends the process.
	reloads, stopSignals := service.Reloads(cfg.Reload)
	defer stopSignals()
	cat, err := cfg.catalog()
	if err != nil {
		return fmt.Errorf("offers catalog: %w", err)
	}
	signer, err := offerlink.NewSigner(offerlink.ParseKeys(cfg.LinkKeys)...)
	if err != nil {
		return fmt.Errorf("LOANFLOW_LINK_KEYS: %w", err)
	}
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("LOANFLOW_PUBLIC_URL %q: want ingress's absolute http(s) address", cfg.PublicURL)
	} else if u.Scheme != "https" {
		log.Warn("LOANFLOW_PUBLIC_URL is not https: proposal links will not meet the partner contract", "public_url", cfg.PublicURL)
	}
	ttl := cfg.LinkTTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
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
	ops.Ready.Add("offers", bus.ReadyCheck(conn.NC, js, health, []string{topology.StreamLoans}, "KV_"+kv.Bucket()))
	metrics, err := bus.NewMetrics(ops.Registry, js, topology.StreamLoans, topology.ConsumerOffers)
	if err != nil {
		return err
	}
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loanflow_offers_dropped_total",
		Help: "Offers the self-check kept out of answers, by product type and failed check.",
	}, []string{"product_type", "check"})
	if err := ops.Registry.Register(dropped); err != nil {
		return fmt.Errorf("offers metrics: %w", err)
	}
	a := &assembler{kv: kv, pub: pub, decided: decided, dropped: dropped, signer: signer, publicURL: cfg.PublicURL, linkTTL: ttl, log: log}
	a.catalog.Store(cat)
	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go service.ReloadOn(reloadCtx, reloads, func() { a.reload(cfg) })
	log.Info("offer assembly", "catalog_version", cat.Version(), "catalog_file", cfg.CatalogFile)
	return bus.Run(ctx, js, log, cfg.Bus.ShutdownTimeout, bus.Handler{
		Consumer: topology.ConsumerOffers, Stream: topology.StreamLoans, Concurrency: cfg.Bus.Concurrency, Retry: retry,
		Handle:   a.assemble,
		Failures: bus.Failures{Stage: "offers", Retry: retry, Publisher: pub, Logger: log, Metrics: metrics},
		Health:   health,
		Metrics:  metrics,
	})
}

type assembler struct {
	// catalog is swapped whole on reload, so each answer is made from one catalog version.
	catalog   atomic.Pointer[catalog.Catalog]
	kv        jetstream.KeyValue
	pub       *bus.Publisher
	decided   *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	signer    *offerlink.Signer
	publicURL string
	linkTTL   time.Duration
	log       *slog.Logger
}

// reload loads the catalog file again; a catalog that does not load is logged with its
// errors and the current one stays. So does one that changes the products but keeps the
// running version: decisions record the catalog version, which must name one catalog.
func (a *assembler) reload(cfg Config) {
	cat, err := cfg.catalog()
	if err != nil {
		a.log.Error("catalog reload failed; the current catalog stays", "catalog_version", a.catalog.Load().Version(), "err", err)
		return
	}
	if cur := a.catalog.Load(); cat.Version() == cur.Version() {
		if !cat.Equal(cur) {
			a.log.Error("catalog reload refused: the file changes the catalog but keeps its version; give it a new version", "catalog_version", cur.Version())
		} else {
			a.log.Info("catalog reload: unchanged", "catalog_version", cur.Version())
		}
		return
	}
	old := a.catalog.Swap(cat)
	a.log.Info("catalog reloaded", "catalog_version", cat.Version(), "previous_version", old.Version())
}

// links signs one application's proposal links: the web link goes through ingress, which
// checks the token and redirects to the catalog's form; the deep link is the app's, with the
// token appended for the app to check with the bank.
type links struct {
	signer   *offerlink.Signer
	base     string
	searchID string
	expires  time.Time
}

// Link implements catalog.Linker. A token that cannot be signed leaves the link out, and the
// self-check then drops an offer left with no link at all.
func (l links) Link(offerID, channel, rendered string) string {
	c := offerlink.Claims{SearchID: l.searchID, OfferID: offerID, Channel: channel, Expires: l.expires.Unix()}
	if channel == offerlink.ChannelWeb {
		c.Target = rendered
	}
	tok, err := l.signer.Sign(c)
	if err != nil {
		return ""
	}
	if channel == offerlink.ChannelWeb {
		return offerlink.WebLink(l.base, tok)
	}
	sep := "?"
	if strings.Contains(rendered, "?") {
		sep = "&"
	}
	return rendered + sep + "token=" + url.QueryEscape(tok)
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
	for _, d := range made.Dropped {
		a.log.Warn("offer failed the self-check and is left out of the answer", "search_id", ev.SearchID,
			"correlation_id", msg.Metadata.Get(events.HeaderCorrelationID), "offer_id", d.OfferID, "checks", d.Checks)
	}
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
		MaxAmount: u.Decision.MaxAmount, MaxPayment: u.Decision.MaxPayment, ReasonCodes: u.ReasonCodes, PolicyVersion: u.PolicyVersion,
		ScoredAt: u.DecidedAt,
	}, nil
}

// count adds a decision this delivery stored (never a redelivery's) to the metrics.
func (a *assembler) count(made events.DecisionMade) {
	a.decided.WithLabelValues(string(made.ProductType), string(made.Decision)).Inc()
	for _, d := range made.Dropped {
		for _, check := range d.Checks {
			a.dropped.WithLabelValues(string(made.ProductType), check).Inc()
		}
	}
}

// decide is the catalog's answer to the scored application, its offers checked and signed.
func (a *assembler) decide(ev events.ApplicationScored) events.DecisionMade {
	cat := a.catalog.Load()
	now := time.Now().UTC()
	res := cat.Answer(catalog.Input{
		SearchID:    ev.SearchID,
		ProductType: ev.ProductType,
		Approved:    ev.Outcome == events.OutcomeApproved,
		Approval:    ev.Approval,
		Grade:       ev.Grade,
		MaxAmount:   ev.MaxAmount,
		MaxPayment:  ev.MaxPayment,
		Amount:      ev.Amount,
		Term:        ev.Term,
		Links:       links{signer: a.signer, base: a.publicURL, searchID: ev.SearchID, expires: now.Add(a.linkTTL)},
	})
	decision, offers := res.Decision, res.Offers
	reasons := slices.Clone(ev.ReasonCodes)
	switch {
	case ev.Outcome != events.OutcomeApproved || decision != partnerapi.DecisionRejected:
	case len(res.Dropped) > 0:
		reasons = append(reasons, catalog.ReasonOffersFailedCheck)
	default:
		reasons = append(reasons, catalog.ReasonNoMatchingProduct)
	}
	if decision == partnerapi.DecisionRejected {
		offers = nil
	}
	var dropped []events.DroppedOffer
	for _, d := range res.Dropped {
		dropped = append(dropped, events.DroppedOffer{OfferID: d.OfferID, Checks: d.Checks})
	}
	return events.DecisionMade{
		SearchID:       ev.SearchID,
		ProductType:    ev.ProductType,
		Decision:       decision,
		Offers:         offers,
		ReasonCodes:    reasons,
		PolicyVersion:  ev.PolicyVersion,
		CatalogVersion: cat.Version(),
		Dropped:        dropped,
		DecidedAt:      now,
	}
}

// store writes the final answer unless the record is already final, and returns the record as
// it stands afterwards.
func (a *assembler) store(ctx context.Context, searchID string, made events.DecisionMade) (decisions.Record, error) {
	answer := &partnerapi.DoneAnswer{
		SearchID: searchID, Status: partnerapi.StatusDone, Name: a.catalog.Load().BankName(),
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
