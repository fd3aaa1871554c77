package ingress

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/pkg/natstest"
)

// TestLeaderReader reads through the stream leader what a direct get reads, and treats a
// deleted key like a missing one.
func TestLeaderReader(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "leader_read"})
	if err != nil {
		t.Fatal(err)
	}
	l := newLeaderReader(nc, kv.Bucket())

	if _, _, err := l.get(ctx, "absent"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("absent key: got %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "k", []byte("v2"))
	if err != nil {
		t.Fatal(err)
	}
	got, gotRev, err := l.get(ctx, "k")
	if err != nil || string(got) != "v2" || gotRev != rev {
		t.Fatalf("get k = %q rev %d, %v; want \"v2\" rev %d", got, gotRev, err, rev)
	}
	if err := kv.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.get(ctx, "k"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("deleted key: got %v, want ErrKeyNotFound", err)
	}
	// The leader's refusals stored nothing: two puts and a delete marker were the last writes.
	s, err := js.Stream(ctx, "KV_leader_read")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.LastSeq != 3 {
		t.Fatalf("stream after the reads: last sequence %d, %v; want 3", info.State.LastSeq, err)
	}
}
