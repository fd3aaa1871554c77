package ingress

import (
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loanflow/loanflow/contracts/decisions"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/services/ingress/internal/intake"
)

// deadline keeps the answer-time promise: every received application is looked at again when
// its deadline falls due (JetStream redelivers it then, so the timer survives restarts and
// needs no scan of the bucket), and one still undecided is failed with reason timeout, the
// failure published so that it is audited. It works also when a whole stage is down.
type deadline struct {
	store *store
	pub   *bus.Publisher
	after time.Duration
}

func (d *deadline) handle(msg *message.Message) error {
	searchID := msg.Metadata.Get(events.HeaderSearchID)
	if !intake.ValidSearchID(searchID) {
		return nil // not an application ingress accepted: nothing to answer
	}
	rec, _, err := d.store.get(msg.Context(), searchID)
	if errors.Is(err, errNotFound) {
		return nil // rolled back, or expired
	}
	if err != nil {
		return err
	}
	if rec.Final() {
		return nil
	}
	if wait := time.Until(rec.CreatedAt.Add(d.after)); wait > 0 {
		bus.Defer(msg, wait)
		return nil
	}
	ev := events.ApplicationFailed{
		SearchID: searchID, Stage: "ingress", Reason: events.ReasonTimeout,
		Detail:    "undecided " + d.after.String() + " after it was received",
		EventType: events.TypeApplicationReceived, Deliveries: int(bus.Delivered(msg)), FailedAt: time.Now().UTC(),
	}
	out, err := bus.NewEvent(events.TypeApplicationFailed, searchID, bus.TraceOf(msg), ev)
	if err != nil {
		return err
	}
	out.SetContext(msg.Context())
	if err := d.pub.Publish(events.TypeApplicationFailed, out); err != nil {
		return err
	}
	// Mark it now rather than wait for the failure consumer: same outcome, sooner.
	return d.store.markFailed(msg.Context(), searchID, decisions.Failure{Stage: ev.Stage, Reason: ev.Reason})
}
