package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A KV watch is an ordered push consumer run here rather than by nats.go, whose ordered
// consumers are created by name ($JS.API.CONSUMER.CREATE.<stream>.<name>[.<filter>]): a user
// allowed that subject may create a durable consumer too, since permissions see subjects, not
// bodies. The nameless request $JS.API.CONSUMER.CREATE.<stream> is one the server refuses
// for a durable consumer (JSConsumerEphemeralWithDurableNameErr), so a service user is given
// only that. The consumer is never deleted by the client either (no CONSUMER.DELETE
// permission): an ephemeral push consumer whose deliver subject loses its subscriber is
// removed by the server after its inactive threshold (5 s by default).

// watchHeartbeat is the idle heartbeat asked of a watch's consumer; two missed ones restart it.
const watchHeartbeat = 5 * time.Second

// apiTimeout bounds a JetStream API request made without a deadline (nats.go's default): a
// request the server's permissions drop is never answered.
const apiTimeout = 5 * time.Second

type watchOptions struct {
	ignoreDeletes, includeHistory, updatesOnly, metaOnly bool
	resumeFrom                                           uint64
}

// kvWatcher implements jetstream.KeyWatcher.
type kvWatcher struct {
	kv      *KV
	opts    watchOptions
	cfg     jetstream.ConsumerConfig
	updates chan jetstream.KeyValueEntry
	cancel  context.CancelFunc
	once    sync.Once
}

// Updates delivers the entries; nil once the initial values are in; closed when the watch ends.
func (w *kvWatcher) Updates() <-chan jetstream.KeyValueEntry { return w.updates }

// Stop ends the watch; Updates is closed soon after.
func (w *kvWatcher) Stop() error {
	w.once.Do(w.cancel)
	return nil
}

// pushConsumer is one incarnation of a watch's consumer.
type pushConsumer struct {
	sub     *nats.Subscription
	pending uint64 // messages it had to deliver when created
}

func (kv *KV) watch(ctx context.Context, filters []string, o watchOptions) (jetstream.KeyWatcher, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:     jetstream.AckNonePolicy,
		MaxDeliver:    1,
		FlowControl:   true,
		IdleHeartbeat: watchHeartbeat,
		HeadersOnly:   o.metaOnly,
		MemoryStorage: true,
		Replicas:      1,
	}
	if o.includeHistory {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	if o.updatesOnly {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	if o.resumeFrom > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.resumeFrom
	}
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0]
	} else {
		cfg.FilterSubjects = filters
	}
	runCtx, cancel := context.WithCancel(ctx)
	w := &kvWatcher{kv: kv, opts: o, cfg: cfg, updates: make(chan jetstream.KeyValueEntry, 256), cancel: cancel}
	c, err := w.start(runCtx)
	if err != nil {
		cancel()
		return nil, err
	}
	go w.run(runCtx, c)
	return w, nil
}

// start subscribes a fresh inbox and creates a consumer delivering to it.
func (w *kvWatcher) start(ctx context.Context) (*pushConsumer, error) {
	nc := w.kv.nc
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", w.kv.bucket, err)
	}
	cfg := w.cfg
	cfg.DeliverSubject = inbox
	body, err := json.Marshal(struct {
		Stream string                   `json:"stream_name"`
		Config jetstream.ConsumerConfig `json:"config"`
	}{w.kv.stream, cfg})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	m, err := nc.RequestWithContext(rctx, "$JS.API.CONSUMER.CREATE."+w.kv.stream, body)
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch %s: create consumer: %w", w.kv.bucket, err)
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
		jetstream.ConsumerInfo
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch %s: create consumer: %w", w.kv.bucket, err)
	}
	if resp.Error != nil {
		_ = sub.Unsubscribe()
		if resp.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound {
			return nil, fmt.Errorf("watch %s: %w", w.kv.bucket, jetstream.ErrBucketNotFound)
		}
		return nil, fmt.Errorf("watch %s: create consumer: %w", w.kv.bucket, resp.Error)
	}
	return &pushConsumer{sub: sub, pending: resp.NumPending}, nil
}

// run delivers the consumer's messages in order until ctx ends. A gap in the consumer's
// sequence, a consumer gone or missed heartbeats start a new consumer after the last stream
// sequence delivered; when that fails, the watch ends (Updates closed) for the caller to watch
// again.
func (w *kvWatcher) run(ctx context.Context, c *pushConsumer) {
	defer close(w.updates)
	defer func() { _ = c.sub.Unsubscribe() }()
	send := func(e jetstream.KeyValueEntry) bool {
		select {
		case w.updates <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	initDone, received, initPending := w.opts.updatesOnly, uint64(0), c.pending
	if !initDone && initPending == 0 {
		initDone = true
		if !send(nil) {
			return
		}
	}
	next, lastSeq := uint64(1), uint64(0) // the consumer sequence expected, the stream sequence last delivered
	reset := func() bool {
		_ = c.sub.Unsubscribe()
		if lastSeq > 0 {
			w.cfg.DeliverPolicy, w.cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, lastSeq+1
		}
		for attempt := 0; attempt < 3; attempt++ {
			fresh, err := w.start(ctx)
			if err == nil {
				c, next = fresh, 1
				if !initDone {
					received, initPending = 0, fresh.pending
				}
				return true
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(250 * time.Millisecond << attempt):
			}
		}
		return false
	}
	for {
		mctx, cancel := context.WithTimeout(ctx, 2*watchHeartbeat+time.Second)
		m, err := c.sub.NextMsgWithContext(mctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil { // no heartbeat, or the subscription went with the connection
			if !reset() {
				return
			}
			continue
		}
		if len(m.Data) == 0 && m.Header.Get("Status") != "" {
			if m.Header.Get("Status") != "100" { // e.g. 409 consumer deleted
				if !reset() {
					return
				}
				continue
			}
			if m.Reply != "" { // a flow control request
				_ = w.kv.nc.Publish(m.Reply, nil)
			}
			if stalled := m.Header.Get("Nats-Consumer-Stalled"); stalled != "" {
				_ = w.kv.nc.Publish(stalled, nil)
			}
			// A heartbeat names the last consumer sequence sent: one not seen is a gap.
			if l, err := strconv.ParseUint(m.Header.Get("Nats-Last-Consumer"), 10, 64); err == nil && l >= next {
				if !reset() {
					return
				}
			}
			continue
		}
		md, err := ackMetadata(m.Reply)
		if err != nil {
			continue // not a consumer's message
		}
		if md.consumerSeq != next {
			if !reset() {
				return
			}
			continue
		}
		next++
		lastSeq = md.streamSeq
		op := operation(m.Header)
		if !w.opts.ignoreDeletes || op == jetstream.KeyValuePut {
			e := &kvEntry{bucket: w.kv.bucket, key: strings.TrimPrefix(m.Subject, w.kv.pre), value: m.Data,
				revision: md.streamSeq, created: md.timestamp, delta: md.pending, op: op}
			if !send(e) {
				return
			}
		}
		if !initDone {
			received++
			if received >= initPending || md.pending == 0 {
				initDone = true
				if !send(nil) {
					return
				}
			}
		}
	}
}

type ackMeta struct {
	streamSeq, consumerSeq, pending uint64
	timestamp                       time.Time
}

// ackMetadata parses a JetStream message's reply subject: $JS.ACK.<stream>.<consumer>.
// <delivered>.<stream seq>.<consumer seq>.<time>.<pending>, or the same with domain and
// account hash after ACK (and a random token last).
func ackMetadata(reply string) (ackMeta, error) {
	t := strings.Split(reply, ".")
	if len(t) == 9 {
		t = append([]string{t[0], t[1], "", ""}, t[2:]...)
	}
	if len(t) < 11 || t[0] != "$JS" || t[1] != "ACK" {
		return ackMeta{}, errors.New("not a JetStream message")
	}
	var n [4]uint64
	for i, tok := range t[7:11] {
		v, err := strconv.ParseUint(tok, 10, 64)
		if err != nil {
			return ackMeta{}, fmt.Errorf("reply subject token %q: %w", tok, err)
		}
		n[i] = v
	}
	return ackMeta{streamSeq: n[0], consumerSeq: n[1], timestamp: time.Unix(0, int64(n[2])), pending: n[3]}, nil
}
