package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Direct gets ($JS.API.DIRECT.GET.<stream>) read a stream that allows them (AllowDirect: AUDIT
// and every KV bucket) from any of its replicas, with no stream API at all: nats.go reaches
// them only through a Stream handle, which costs a STREAM.INFO request that the service users
// are denied (deploy/nats/users.conf). A stream that does not exist has nobody subscribed to
// its direct subject, and the server's JetStream API, subscribed to all of $JS.API.>, ignores
// the request: it is not answered at all.

// ErrStreamMissing is returned by a direct get that nobody answered within DirectTimeout: the
// stream does not exist, does not allow direct gets, or has no replica reachable.
var ErrStreamMissing = errors.New("stream not found (no replica answers its direct gets)")

// DirectTimeout bounds a direct get: a replica answers in milliseconds, found or not.
const DirectTimeout = 2 * time.Second

// directRequest sends one direct get, mapping silence to ErrStreamMissing.
func directRequest(ctx context.Context, nc *nats.Conn, stream, subject string, body []byte) (*nats.Msg, error) {
	rctx, cancel := context.WithTimeout(ctx, DirectTimeout)
	defer cancel()
	m, err := nc.RequestWithContext(rctx, subject, body)
	if err == nil {
		return m, nil
	}
	if errors.Is(err, nats.ErrNoResponders) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
		return nil, fmt.Errorf("direct get on %s: %w", stream, ErrStreamMissing)
	}
	return nil, fmt.Errorf("direct get on %s: %w", stream, err)
}

// DirectRequest is a direct get: the message at Seq, the first at or after Seq (or
// StartTime) on NextFor, or the last on LastFor; with Batch, up to that many from there.
type DirectRequest struct {
	Seq uint64 `json:"seq,omitempty"`
	// LastFor asks for the last message on a subject, wildcards allowed (no batch).
	LastFor   string     `json:"last_by_subj,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	// UpToSeq stops a batch at that sequence (0: the stream's last).
	UpToSeq uint64 `json:"up_to_seq,omitempty"`
}

// DirectGetLast returns the last message stored on subject in stream, or
// jetstream.ErrMsgNotFound. It is the request nats.go's KeyValue.Get makes on a bucket:
// $JS.API.DIRECT.GET.<stream>.<subject>, which permissions can grant subject by subject.
func DirectGetLast(ctx context.Context, nc *nats.Conn, stream, subject string) (*jetstream.RawStreamMsg, error) {
	m, err := directRequest(ctx, nc, stream, "$JS.API.DIRECT.GET."+stream+"."+subject, nil)
	if err != nil {
		return nil, err
	}
	return directMsg(m)
}

// DirectGet returns the one message req selects (Batch must be 0), or jetstream.ErrMsgNotFound.
func DirectGet(ctx context.Context, nc *nats.Conn, stream string, req DirectRequest) (*jetstream.RawStreamMsg, error) {
	if req.Batch != 0 {
		return nil, errors.New("direct get: a batch is read with DirectBatch")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	m, err := directRequest(ctx, nc, stream, "$JS.API.DIRECT.GET."+stream, body)
	if err != nil {
		return nil, err
	}
	return directMsg(m)
}

// DirectBatch hands each message of the batch req selects (req.Batch > 0) to each, in stream
// order, until each returns false, and returns how many messages matching the request follow
// the batch in the stream (0: the batch read up to the stream's end). No message at all is
// jetstream.ErrMsgNotFound. When each stops the batch, pending is 0.
func DirectBatch(ctx context.Context, nc *nats.Conn, stream string, req DirectRequest, each func(*jetstream.RawStreamMsg) bool) (pending uint64, err error) {
	if req.Batch <= 0 {
		return 0, errors.New("direct batch: Batch must be positive")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	// The answers come as several messages on one reply subject, so this is a subscription
	// of its own on the connection's (permitted) inbox prefix, not a request.
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return 0, fmt.Errorf("direct batch on %s: %w", stream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return 0, fmt.Errorf("direct batch on %s: %w", stream, err)
	}
	for first := true; ; first = false {
		// Each answer follows the previous within DirectTimeout, or nobody is answering.
		mctx, cancel := context.WithTimeout(ctx, DirectTimeout)
		m, err := sub.NextMsgWithContext(mctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = ErrStreamMissing
			}
			return 0, fmt.Errorf("direct batch on %s: %w", stream, err)
		}
		if len(m.Data) == 0 {
			switch m.Header.Get("Status") {
			case "503":
				return 0, fmt.Errorf("direct batch on %s: %w", stream, ErrStreamMissing)
			case "204": // end of batch
				n, err := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("direct batch on %s: end of batch without Nats-Num-Pending", stream)
				}
				return n, nil
			case "404":
				if first {
					return 0, jetstream.ErrMsgNotFound
				}
				return 0, nil
			}
		}
		msg, err := directMsg(m)
		if err != nil {
			return 0, fmt.Errorf("direct batch on %s: %w", stream, err)
		}
		// Stopping early leaves the rest of the batch to Unsubscribe, which drops it.
		if !each(msg) {
			return 0, nil
		}
	}
}

// directMsg decodes one direct get answer as nats.go does: a status without a body is "not
// found" (404) or an error, anything else carries the message's stream headers.
func directMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	if len(m.Data) == 0 {
		if st := m.Header.Get("Status"); st != "" {
			if st == "404" {
				return nil, jetstream.ErrMsgNotFound
			}
			if st == "503" {
				return nil, ErrStreamMissing
			}
			return nil, fmt.Errorf("direct get: %s %s", st, m.Header.Get("Description"))
		}
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: sequence header %q: %w", m.Header.Get(jetstream.SequenceHeader), err)
	}
	at, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("direct get: time stamp header: %w", err)
	}
	subject := m.Header.Get(jetstream.SubjectHeader)
	if subject == "" {
		return nil, errors.New("direct get: no subject header")
	}
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: seq, Header: m.Header, Data: m.Data, Time: at}, nil
}
