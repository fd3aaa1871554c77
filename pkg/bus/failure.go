package bus

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
)

// ReportAttempts is how many deliveries past a stage's own attempts the server still makes,
// only to publish the failure event that ends the application.
const ReportAttempts = 5

// permanentError marks an error that no retry can cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot cure (an undecodable or invalid event): the
// stage gives up at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Failures is the middleware that decides when a stage gives up on an event: at once for a
// permanent error, or on the last of Retry.MaxDeliver deliveries. Giving up publishes
// loan.application.failed.v1 (when Publisher is set), logs the reason with the correlation id,
// and terminates the message so that it never loops. Earlier errors are nacked with back-off.
type Failures struct {
	// Stage names the service in the failure event.
	Stage string
	Retry topology.Retry
	// Publisher publishes the failure event; nil for consumers that are not pipeline stages
	// (the failure marker itself), which only log and terminate.
	Publisher message.Publisher
	Logger    *slog.Logger
	// Metrics, when set, counts the dead letters.
	Metrics *Metrics
}

// Middleware wraps a handler with the give-up policy.
func (f Failures) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		delivered := Delivered(msg)
		permanent := IsPermanent(err)
		log := f.Logger.With(
			"stage", f.Stage,
			"event_type", msg.Metadata.Get(events.HeaderEventType),
			"search_id", msg.Metadata.Get(events.HeaderSearchID),
			"correlation_id", msg.Metadata.Get(events.HeaderCorrelationID),
			"delivered", delivered,
			"err", err,
		)
		if !permanent && int(delivered) < f.Retry.MaxDeliver {
			log.Warn("event failed, will retry", "retry_in", f.Retry.Delay(delivered))
			return nil, err
		}
		reason := events.ReasonRetriesExhausted
		if permanent {
			reason = events.ReasonPoison
		}
		if f.Publisher != nil {
			if perr := f.deadLetter(msg, reason, err, delivered); perr != nil {
				log.Error("event failed and could not be dead-lettered, will retry", "publish_err", perr)
				return nil, perr
			}
			f.Metrics.deadLettered(f.Stage, reason)
			if perr := f.publishFailure(msg, reason, err, delivered); perr != nil {
				log.Error("event failed and the failure could not be published, will retry", "publish_err", perr)
				return nil, perr
			}
		}
		log.Error("event failed for good, application marked failed", "reason", reason)
		msg.Metadata.Set(metaTerminate, "1")
		return nil, nil
	}
}

// Headers of a dead letter, beside the original event's own.
const (
	HeaderDeadReason     = "Loanflow-Dead-Reason"
	HeaderDeadDetail     = "Loanflow-Dead-Detail"
	HeaderDeadSubject    = "Loanflow-Dead-Subject"
	HeaderDeadStreamSeq  = "Loanflow-Dead-Stream-Seq"
	HeaderDeadDeliveries = "Loanflow-Dead-Deliveries"
)

// deadLetter keeps a copy of the event given up on, with why, on the DEADLETTER stream.
func (f Failures) deadLetter(msg *message.Message, reason string, cause error, delivered uint64) error {
	dl := message.NewMessage("dead:"+msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		dl.Metadata.Set(k, v)
	}
	dl.Metadata.Set(events.HeaderMsgID, "dead:"+msg.UUID)
	dl.Metadata.Set(HeaderDeadReason, reason)
	dl.Metadata.Set(HeaderDeadDetail, cause.Error())
	dl.Metadata.Set(HeaderDeadSubject, msg.Metadata.Get(MetaSubject))
	dl.Metadata.Set(HeaderDeadStreamSeq, msg.Metadata.Get(MetaStreamSeq))
	dl.Metadata.Set(HeaderDeadDeliveries, strconv.FormatUint(delivered, 10))
	dl.SetContext(msg.Context())
	return f.Publisher.Publish(topology.DeadLetterPrefix+f.Stage, dl)
}

func (f Failures) publishFailure(msg *message.Message, reason string, cause error, delivered uint64) error {
	searchID := msg.Metadata.Get(events.HeaderSearchID)
	ev := events.ApplicationFailed{
		SearchID:   searchID,
		Stage:      f.Stage,
		Reason:     reason,
		Detail:     cause.Error(),
		EventType:  msg.Metadata.Get(events.HeaderEventType),
		Deliveries: int(delivered),
		FailedAt:   time.Now().UTC(),
	}
	out, err := NewEvent(events.TypeApplicationFailed, searchID, TraceOf(msg), ev)
	if err != nil {
		return err
	}
	if searchID == "" {
		// An event without a search_id (not ours, or mangled) fails on its own id.
		out.Metadata.Set(events.HeaderMsgID, "failed:"+msg.UUID)
	}
	out.SetContext(msg.Context())
	return f.Publisher.Publish(events.TypeApplicationFailed, out)
}
