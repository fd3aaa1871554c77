package ingress

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaderReader reads a key's latest value through the bucket stream's leader
// ($JS.API.STREAM.MSG.GET), which, unlike a direct get, any replica may not answer. nats.go's
// KeyValue always reads direct when the bucket allows it, so this is the raw API request.
type leaderReader struct {
	nc      *nats.Conn
	subject string // $JS.API.STREAM.MSG.GET.KV_<bucket>
	prefix  string // $KV.<bucket>.
}

func newLeaderReader(nc *nats.Conn, bucket string) *leaderReader {
	return &leaderReader{
		nc:      nc,
		subject: "$JS.API.STREAM.MSG.GET.KV_" + bucket,
		prefix:  "$KV." + bucket + ".",
	}
}

// msgGetResponse is the part of the server's JSApiMsgGetResponse read here.
type msgGetResponse struct {
	Message *struct {
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs"`
		Data     []byte `json:"data"`
	} `json:"message"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// errCodeNoMessage is JetStream's "no message found" (JSNoMessageFoundErr).
const errCodeNoMessage = 10037

// get returns the key's value and revision, or jetstream.ErrKeyNotFound (also for a key whose
// latest entry is a delete or purge marker).
func (l *leaderReader) get(ctx context.Context, key string) ([]byte, uint64, error) {
	req, err := json.Marshal(map[string]string{"last_by_subj": l.prefix + key})
	if err != nil {
		return nil, 0, err
	}
	msg, err := l.nc.RequestWithContext(ctx, l.subject, req)
	if err != nil {
		return nil, 0, fmt.Errorf("leader read: %w", err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("leader read: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeNoMessage:
		return nil, 0, jetstream.ErrKeyNotFound
	case resp.Error != nil:
		return nil, 0, fmt.Errorf("leader read: %s (%d)", resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, 0, fmt.Errorf("leader read: empty answer")
	}
	if len(resp.Message.Header) > 0 {
		// Headers come in NATS wire form; a KV-Operation header marks a delete or purge.
		hdr, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err == nil && hdr.Get("KV-Operation") != "" {
			return nil, 0, jetstream.ErrKeyNotFound
		}
	}
	return resp.Message.Data, resp.Message.Sequence, nil
}
