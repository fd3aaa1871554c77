package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

// queue turns referrals into underwriting cases and keeps the fallback promise. The referral
// stays un-acked while its case is undecided: JetStream delivers it again at DecideBy (a
// timer kept by the server, so it survives restarts of every console replica), and a case
// still undecided then is decided by the policy's fallback, compare-and-swap guarded against
// an officer deciding at the same moment. The message is acked only once the decided event
// is published, whoever decided.
type queue struct {
	store *store
	pub   *bus.Publisher
	log   *slog.Logger
	now   func() time.Time
}

func (q *queue) handle(msg *message.Message) error {
	ctx := msg.Context()
	var ev events.ApplicationReferred
	if err := bus.Decode(msg, &ev); err != nil {
		return err
	}
	tr := bus.TraceOf(msg)
	c, err := underwriting.Open(ev, tr.CorrelationID, tr.TraceParent)
	if err != nil {
		return bus.Permanent(err)
	}
	if err := q.store.create(ctx, c); err != nil {
		return err
	}
	cur, _, err := q.store.get(ctx, c.SearchID)
	if err != nil {
		return err
	}
	if cur.State != underwriting.StateDecided {
		if wait := cur.DecideBy.Sub(q.now()); wait > 0 {
			bus.Defer(msg, wait)
			return nil
		}
		cur, err = q.store.update(ctx, c.SearchID, func(c underwriting.Case) (underwriting.Case, error) {
			return c.ApplyFallback(q.now())
		})
		switch {
		case errors.Is(err, underwriting.ErrDecided):
			// An officer won the race: announce theirs (cur is the case as it stands).
		case err != nil:
			return err
		default:
			q.log.Info("underwriting fallback applied", "search_id", c.SearchID, "correlation_id", c.CorrelationID,
				"outcome", cur.Decision.Proposal.Outcome, "approval", cur.Decision.Proposal.Approval)
		}
	}
	return announce(ctx, q.store, q.pub, cur)
}

// announce publishes loan.underwriting.decided.v1 for a decided case unless it already was,
// and records that it was; a take still owed to the audit is published first, so the stream
// holds taken before decided. The events' Nats-Msg-Id is derived from search_id and type, so a
// publish repeated after a crash between the two steps is deduplicated by JetStream.
func announce(ctx context.Context, st *store, pub *bus.Publisher, c underwriting.Case) error {
	if err := announceTake(ctx, st, pub, c); err != nil {
		return err
	}
	if c.Announced {
		return nil
	}
	ev, err := c.Event()
	if err != nil {
		return err
	}
	out, err := bus.NewEvent(events.TypeUnderwritingDecided, c.SearchID, traceOf(c), ev)
	if err != nil {
		return err
	}
	out.SetContext(ctx)
	if err := pub.Publish(events.TypeUnderwritingDecided, out); err != nil {
		return fmt.Errorf("announce %s: %w", c.SearchID, err)
	}
	if _, err := st.update(ctx, c.SearchID, func(c underwriting.Case) (underwriting.Case, error) { return c.MarkAnnounced() }); err != nil {
		return fmt.Errorf("mark %s announced: %w", c.SearchID, err)
	}
	return nil
}

// announceTake publishes loan.underwriting.taken.v1 for a case an officer took, unless it
// already was, and records that it was. A take whose publish failed stands (the publish may
// have reached the stream all the same, and undoing it would let a second officer's take be
// deduplicated away as the first's); the event stays owed and is published again by the
// holder's next take, before the decided event, or at the referral's redelivery.
func announceTake(ctx context.Context, st *store, pub *bus.Publisher, c underwriting.Case) error {
	if c.TakenBy == "" || c.TakeAnnounced {
		return nil
	}
	ev, err := c.TakenEvent()
	if err != nil {
		return err
	}
	out, err := bus.NewEvent(events.TypeUnderwritingTaken, c.SearchID, traceOf(c), ev)
	if err != nil {
		return err
	}
	out.SetContext(ctx)
	if err := pub.Publish(events.TypeUnderwritingTaken, out); err != nil {
		return fmt.Errorf("announce the take of %s: %w", c.SearchID, err)
	}
	if _, err := st.update(ctx, c.SearchID, func(c underwriting.Case) (underwriting.Case, error) { return c.MarkTakeAnnounced() }); err != nil {
		return fmt.Errorf("mark the take of %s announced: %w", c.SearchID, err)
	}
	return nil
}

// traceOf is the referral's trace, carried on by the events of its case.
func traceOf(c underwriting.Case) bus.Trace {
	return bus.Trace{CorrelationID: c.CorrelationID, TraceParent: c.TraceParent}
}
