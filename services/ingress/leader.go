package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/pkg/bus"
)

// leaderReader reads a key's latest value so that only the bucket stream's leader may say it
// does not exist: a direct get may be answered by a follower that has not applied the write
// yet. It needs no stream API (STREAM.MSG.GET, denied to the ingress user): the leader is asked
// the key's last revision by a publish it must refuse, one expecting a last revision no key
// can have (Nats-Expected-Last-Subject-Sequence: MaxInt64). Publishes are checked by the
// leader alone, and its refusal names the revision ("wrong last sequence: N"; 0 for none);
// nothing is stored. A revision then comes from direct gets, asked again until a replica
// that has it answers.
type leaderReader struct {
	nc     *nats.Conn
	stream string // KV_<bucket>
	prefix string // $KV.<bucket>.
}

func newLeaderReader(nc *nats.Conn, bucket string) *leaderReader {
	return &leaderReader{nc: nc, stream: "KV_" + bucket, prefix: "$KV." + bucket + "."}
}

// errCodeWrongLastSeq and errCodeWrongLastSeqInFlight are JetStream's answers to an
// expectation not met: with the current revision, or, on a replicated stream with a write to
// the key in flight, without it.
const (
	errCodeWrongLastSeq         = 10071
	errCodeWrongLastSeqInFlight = 10164
)

// retryPause is how long the reader waits before asking again (a write in flight, a follower
// behind).
const retryPause = 5 * time.Millisecond

// get returns the key's value and revision, or jetstream.ErrKeyNotFound (also for a key whose
// latest entry is a delete or purge marker).
func (l *leaderReader) get(ctx context.Context, key string) ([]byte, uint64, error) {
	for {
		last, err := l.lastRevision(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		if last == 0 {
			return nil, 0, jetstream.ErrKeyNotFound
		}
		m, err := bus.DirectGetLast(ctx, l.nc, l.stream, l.prefix+key)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, 0, fmt.Errorf("leader read: %w", err)
		}
		if err == nil && m.Sequence >= last {
			if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
				return nil, 0, jetstream.ErrKeyNotFound
			}
			return m.Data, m.Sequence, nil
		}
		if err := pause(ctx); err != nil { // a follower behind the leader answered
			return nil, 0, err
		}
	}
}

// lastRevision asks the stream leader for the key's last revision (0: none).
func (l *leaderReader) lastRevision(ctx context.Context, key string) (uint64, error) {
	for {
		m := nats.NewMsg(l.prefix + key)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatInt(math.MaxInt64, 10))
		reply, err := l.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("leader read: %w", err)
		}
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &resp); err != nil {
			return 0, fmt.Errorf("leader read: %w", err)
		}
		switch {
		case resp.Error == nil:
			return 0, errors.New("leader read: the probe was stored")
		case resp.Error.ErrorCode == errCodeWrongLastSeq:
			n, ok := strings.CutPrefix(resp.Error.Description, "wrong last sequence: ")
			rev, err := strconv.ParseUint(n, 10, 64)
			if !ok || err != nil {
				return 0, fmt.Errorf("leader read: unexpected answer %q", resp.Error.Description)
			}
			return rev, nil
		case resp.Error.ErrorCode == errCodeWrongLastSeqInFlight:
			if err := pause(ctx); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("leader read: %w", resp.Error)
		}
	}
}

func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("leader read: %w", ctx.Err())
	case <-time.After(retryPause):
		return nil
	}
}
