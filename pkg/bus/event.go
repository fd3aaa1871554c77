package bus

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/loanflow/loanflow/contracts/events"
)

// Metadata keys the subscriber adds to every message from JetStream. They describe the
// delivery, not the event, so the publisher never copies them into headers.
const (
	MetaSubject   = "nats.subject"
	MetaDelivered = "nats.num_delivered"
	MetaStreamSeq = "nats.stream_seq"
	metaTerminate = "nats.terminate"
	metaDefer     = "nats.defer"
)

// Defer has the subscriber deliver the message again after d instead of acking it: a timer
// kept by JetStream, which survives restarts. The handler returns nil.
func Defer(msg *message.Message, d time.Duration) {
	msg.Metadata.Set(metaDefer, strconv.FormatInt(int64(max(d, time.Millisecond)), 10))
}

// Trace is what an event carries from the HTTP request that caused it.
type Trace struct {
	CorrelationID string
	TraceParent   string
}

// TraceOf reads the trace headers of a consumed event, to pass them on to the events it causes.
func TraceOf(msg *message.Message) Trace {
	return Trace{
		CorrelationID: msg.Metadata.Get(events.HeaderCorrelationID),
		TraceParent:   msg.Metadata.Get(events.HeaderTraceParent),
	}
}

// NewEvent builds the message of one event: its JSON payload and the headers every event
// carries, with the deduplication id derived from search_id and the event type.
func NewEvent(eventType, searchID string, tr Trace, payload any) (*message.Message, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", eventType, err)
	}
	id := events.MsgID(searchID, eventType)
	msg := message.NewMessage(id, b)
	msg.Metadata.Set(events.HeaderMsgID, id)
	msg.Metadata.Set(events.HeaderEventType, eventType)
	msg.Metadata.Set(events.HeaderSearchID, searchID)
	if tr.CorrelationID != "" {
		msg.Metadata.Set(events.HeaderCorrelationID, tr.CorrelationID)
	}
	if tr.TraceParent != "" {
		msg.Metadata.Set(events.HeaderTraceParent, tr.TraceParent)
	}
	return msg, nil
}

// Decode unmarshals a consumed event's payload. A payload that does not decode never will:
// the error is permanent, so the message is not retried.
func Decode(msg *message.Message, v any) error {
	if err := json.Unmarshal(msg.Payload, v); err != nil {
		return Permanent(fmt.Errorf("decode %s: %w", msg.Metadata.Get(events.HeaderEventType), err))
	}
	return nil
}

// Delivered is how many times the message has been delivered, this time included.
func Delivered(msg *message.Message) uint64 {
	n, _ := strconv.ParseUint(msg.Metadata.Get(MetaDelivered), 10, 64)
	return n
}
