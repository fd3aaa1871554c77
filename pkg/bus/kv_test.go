package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// kvPair returns a bucket bound both ways: through bus.KV and through nats.go's KeyValue.
func kvPair(t *testing.T) (*bus.KV, jetstream.KeyValue, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Start(t)
	nc, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	full, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kvtest", History: 5})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bus.BindBucket(ctx, nc, js, "kvtest")
	if err != nil {
		t.Fatal(err)
	}
	return kv, full, js
}

// TestKVBehavesAsNatsGo runs the operations the services use on bus.KV and checks each
// answer, and what nats.go's own KeyValue reads of the result.
func TestKVBehavesAsNatsGo(t *testing.T) {
	kv, full, _ := kvPair(t)
	ctx := context.Background()
	if _, err := kv.Get(ctx, "a"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrKeyNotFound", err)
	}
	rev, err := kv.Create(ctx, "a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = kv.Create(ctx, "a", []byte("2"))
	var apiErr *jetstream.APIError
	if !errors.Is(err, jetstream.ErrKeyExists) || !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		t.Fatalf("second Create: %v, want ErrKeyExists wrapping the server's 10071", err)
	}
	e, err := kv.Get(ctx, "a")
	if err != nil || string(e.Value()) != "1" || e.Revision() != rev || e.Key() != "a" || e.Bucket() != "kvtest" || e.Operation() != jetstream.KeyValuePut {
		t.Fatalf("Get = %+v, %v; want value 1 at revision %d", e, err, rev)
	}
	if _, err := kv.Update(ctx, "a", []byte("x"), rev+10); !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		t.Fatalf("Update at a wrong revision: %v, want ErrKeyRevisionMismatch", err)
	}
	rev2, err := kv.Update(ctx, "a", []byte("2"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("Update = %d, %v", rev2, err)
	}
	if got, err := full.Get(ctx, "a"); err != nil || string(got.Value()) != "2" || got.Revision() != rev2 {
		t.Fatalf("nats.go reads %v, %v; want 2 at %d", got, err, rev2)
	}
	if err := kv.Delete(ctx, "a", jetstream.LastRevision(rev)); !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		t.Fatalf("Delete at a stale revision: %v, want ErrKeyRevisionMismatch", err)
	}
	if err := kv.Delete(ctx, "a", jetstream.LastRevision(rev2)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "a"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("Get of a deleted key: %v, want ErrKeyNotFound", err)
	}
	if _, err := full.Get(ctx, "a"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("nats.go Get of the deleted key: %v, want ErrKeyNotFound", err)
	}
	rev3, err := kv.Create(ctx, "a", []byte("3")) // over a delete marker
	if err != nil {
		t.Fatalf("Create over a delete marker: %v", err)
	}
	if e, err := kv.GetRevision(ctx, "a", rev); err != nil || string(e.Value()) != "1" {
		t.Fatalf("GetRevision(%d) = %v, %v; want 1", rev, e, err)
	}
	if _, err := kv.GetRevision(ctx, "b", rev); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("GetRevision of another key's revision: %v, want ErrKeyNotFound", err)
	}
	h, err := kv.History(ctx, "a")
	if err != nil || len(h) != 4 || h[2].Operation() != jetstream.KeyValueDelete || h[3].Revision() != rev3 {
		t.Fatalf("History = %d entries, %v; want put, put, delete, put", len(h), err)
	}
	if _, err := kv.Put(ctx, "b", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if keys, err := kv.Keys(ctx); err != nil || len(keys) != 2 || keys[0] != "a" || keys[1] != "b" {
		t.Fatalf("Keys = %v, %v; want [a b]", keys, err)
	}
	if err := kv.Purge(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if h, err := full.History(ctx, "a"); err != nil || len(h) != 1 || h[0].Operation() != jetstream.KeyValuePurge {
		t.Fatalf("nats.go History after Purge = %v, %v; want the purge marker alone", h, err)
	}
	if _, err := kv.Get(ctx, "bad key"); !errors.Is(err, jetstream.ErrInvalidKey) {
		t.Fatalf("Get of an invalid key: %v, want ErrInvalidKey", err)
	}
	if err := kv.PurgeDeletes(ctx); !errors.Is(err, bus.ErrNeedsStreamAPI) {
		t.Fatalf("PurgeDeletes: %v, want ErrNeedsStreamAPI", err)
	}
}

// TestKVCreateWithTTL passes nats.go's KeyTTL option through.
func TestKVCreateWithTTL(t *testing.T) {
	srv := natstest.Start(t)
	nc, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ttl", LimitMarkerTTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	kv, err := bus.BindBucket(ctx, nc, js, "ttl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k", []byte("v"), jetstream.KeyTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "the key to expire", func() bool {
		_, err := kv.Get(ctx, "k")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}

// TestKVWatch checks the initial values and their nil marker, updates, delete markers, the
// UpdatesOnly and IgnoreDeletes options, and that a stopped watch's consumer goes away.
func TestKVWatch(t *testing.T) {
	kv, _, js := kvPair(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if _, err := kv.Put(ctx, k, []byte(k+"1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "a", []byte("a2")); err != nil {
		t.Fatal(err)
	}
	all, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	news, err := kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	next := func(w jetstream.KeyWatcher) jetstream.KeyValueEntry {
		t.Helper()
		select {
		case e, ok := <-w.Updates():
			if !ok {
				t.Fatal("updates closed")
			}
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
			return nil
		}
	}
	got := map[string]string{}
	for e := next(all); e != nil; e = next(all) {
		got[e.Key()] = string(e.Value())
	}
	if len(got) != 2 || got["a"] != "a2" || got["b"] != "b1" {
		t.Fatalf("initial values %v, want the latest of a and b", got)
	}
	if _, err := kv.Put(ctx, "b", []byte("b2")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e := next(all); e.Key() != "b" || string(e.Value()) != "b2" {
		t.Errorf("update %s=%s, want b=b2", e.Key(), e.Value())
	}
	if e := next(all); e.Key() != "a" || e.Operation() != jetstream.KeyValueDelete {
		t.Errorf("update %s %v, want a deleted", e.Key(), e.Operation())
	}
	if e := next(news); e == nil || e.Key() != "b" || string(e.Value()) != "b2" {
		t.Errorf("updates-only watch: first %v, want b=b2", e)
	}
	if _, err := kv.Put(ctx, "c", []byte("c1")); err != nil {
		t.Fatal(err)
	}
	if e := next(news); e == nil || e.Key() != "c" {
		t.Errorf("updates-only watch after a delete: %v, want c (the delete skipped)", e)
	}
	for _, w := range []jetstream.KeyWatcher{all, news} {
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		for range w.Updates() { //nolint:revive // drained until closed
		}
	}
	s, err := js.Stream(ctx, "KV_kvtest")
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "the stopped watches' consumers to be removed by the server", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Consumers == 0
	})
}

// TestKVWatchRecoversFromADeletedConsumer deletes a watch's consumer under it: the watch goes
// on from where it was, nothing missed.
func TestKVWatchRecoversFromADeletedConsumer(t *testing.T) {
	kv, _, js := kvPair(t)
	ctx := context.Background()
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	if _, err := kv.Put(ctx, "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if e := <-w.Updates(); e == nil || string(e.Value()) != "1" {
		t.Fatalf("first update %v", e)
	}
	s, err := js.Stream(ctx, "KV_kvtest")
	if err != nil {
		t.Fatal(err)
	}
	for name := range s.ConsumerNames(ctx).Name() {
		if err := s.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "k", []byte("2")); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || string(e.Value()) != "2" {
			t.Fatalf("update after the consumer was deleted: %v, want 2", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the watch did not recover")
	}
}

// TestKVOptions decodes every nats.go option the adapter reads: a nats.go release that
// changes how they are built fails here.
func TestKVOptions(t *testing.T) {
	kv, _, _ := kvPair(t)
	ctx := context.Background()
	if _, err := kv.WatchAll(ctx, jetstream.IncludeHistory(), jetstream.UpdatesOnly()); !errors.Is(err, jetstream.ErrInvalidOption) {
		t.Errorf("IncludeHistory with UpdatesOnly: %v, want nats.go's ErrInvalidOption", err)
	}
	rev, err := kv.Put(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("2")); err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "k", jetstream.ResumeFromRevision(rev), jetstream.MetaOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	if e := <-w.Updates(); e == nil || e.Revision() != rev || len(e.Value()) != 0 {
		t.Errorf("resumed, metadata only: %v, want revision %d without its value", e, rev)
	}
	if err := kv.Delete(ctx, "k", jetstream.PurgeTTL(time.Second)); !errors.Is(err, jetstream.ErrTTLOnDeleteNotSupported) {
		t.Errorf("Delete with a TTL: %v, want ErrTTLOnDeleteNotSupported", err)
	}
}

// TestBindBucketOfAMissingBucket is ErrBucketNotFound, not a hang.
func TestBindBucketOfAMissingBucket(t *testing.T) {
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
	if _, err := bus.BindBucket(context.Background(), nc, js, "nope"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("BindBucket: %v, want ErrBucketNotFound", err)
	}
}
