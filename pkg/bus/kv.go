package bus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KV is a KeyValue bucket bound without the stream API. nats.go's js.KeyValue asks STREAM.INFO
// of the bucket's stream before anything else (and KeyValue.Status, Watch's ordered consumer
// and GetRevision go through a Stream handle), which the service users are denied
// (deploy/nats/users.conf). KV does what nats.go's KeyValue does, over the subjects a user can
// be granted key by key:
//   - reads are direct gets ($JS.API.DIRECT.GET.KV_<b>.$KV.<b>.<key>; every bucket is created
//     with AllowDirect);
//   - writes are publishes to $KV.<b>.<key>, with Nats-Expected-Last-Subject-Sequence for
//     Create, Update and a Delete at a revision, and a KV-Operation header for delete and
//     purge markers;
//   - watches are ephemeral push consumers created with the request that cannot create a
//     durable one ($JS.API.CONSUMER.CREATE.KV_<b>, no consumer name), never deleted by the
//     client: the server removes them when their inbox is unsubscribed (see watch.go).
//
// Errors, revisions and entries are nats.go's: jetstream.ErrKeyNotFound, ErrKeyExists (and
// the server's APIError it wraps), ErrKeyRevisionMismatch, KeyValuePut/Delete/Purge.
type KV struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	bucket string
	stream string // KV_<bucket>
	pre    string // $KV.<bucket>.
}

var _ jetstream.KeyValue = (*KV)(nil)

// probeKey is the key BindBucket and readiness read to prove a bucket's stream exists: its
// absence is answered by the stream, a missing stream by nobody.
const probeKey = "_bound"

// BindBucket opens an existing bucket with one direct get, or returns an error wrapping
// jetstream.ErrBucketNotFound.
func BindBucket(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, bucket string) (*KV, error) {
	if !validBucketRe.MatchString(bucket) {
		return nil, jetstream.ErrInvalidBucketName
	}
	kv := &KV{nc: nc, js: js, bucket: bucket, stream: "KV_" + bucket, pre: "$KV." + bucket + "."}
	if err := kv.check(ctx); err != nil {
		return nil, err
	}
	return kv, nil
}

// check proves the bucket's stream exists.
func (kv *KV) check(ctx context.Context) error {
	_, err := DirectGetLast(ctx, kv.nc, kv.stream, kv.pre+probeKey)
	switch {
	case err == nil || errors.Is(err, jetstream.ErrMsgNotFound):
		return nil
	case errors.Is(err, ErrStreamMissing):
		return fmt.Errorf("bucket %s: %w: %w", kv.bucket, jetstream.ErrBucketNotFound, err)
	default:
		return fmt.Errorf("bucket %s: %w", kv.bucket, err)
	}
}

// The rules nats.go applies to bucket names and keys.
var (
	validBucketRe    = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	validKeyRe       = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)
	validSearchKeyRe = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9*]*[>]?$`)
)

func keyValid(key string, re *regexp.Regexp) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return false
	}
	return re.MatchString(key)
}

// Bucket returns the bucket's name.
func (kv *KV) Bucket() string { return kv.bucket }

// Get returns the key's latest value, or jetstream.ErrKeyNotFound (also when it was deleted).
func (kv *KV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := kv.latest(ctx, key)
	if errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, jetstream.ErrKeyNotFound
	}
	return e, err
}

// latest returns the key's last entry; a delete or purge marker comes with ErrKeyDeleted.
func (kv *KV) latest(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if !keyValid(key, validKeyRe) {
		return nil, jetstream.ErrInvalidKey
	}
	m, err := DirectGetLast(ctx, kv.nc, kv.stream, kv.pre+key)
	return kv.entry(key, m, err)
}

// GetRevision returns the key's value at revision, or jetstream.ErrKeyNotFound. It reads by
// sequence ($JS.API.DIRECT.GET.KV_<b>), which no service user is granted today.
func (kv *KV) GetRevision(ctx context.Context, key string, revision uint64) (jetstream.KeyValueEntry, error) {
	if !keyValid(key, validKeyRe) {
		return nil, jetstream.ErrInvalidKey
	}
	m, err := DirectGet(ctx, kv.nc, kv.stream, DirectRequest{Seq: revision})
	if err == nil && m.Subject != kv.pre+key {
		return nil, jetstream.ErrKeyNotFound
	}
	e, err := kv.entry(key, m, err)
	if errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, jetstream.ErrKeyNotFound
	}
	return e, err
}

func (kv *KV) entry(key string, m *jetstream.RawStreamMsg, err error) (jetstream.KeyValueEntry, error) {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	e := &kvEntry{bucket: kv.bucket, key: key, value: m.Data, revision: m.Sequence, created: m.Time, op: operation(m.Header)}
	if e.op != jetstream.KeyValuePut {
		return e, jetstream.ErrKeyDeleted
	}
	return e, nil
}

// operation reads a stored message's KV operation from its headers, as nats.go does.
func operation(h nats.Header) jetstream.KeyValueOp {
	switch h.Get("KV-Operation") {
	case "DEL":
		return jetstream.KeyValueDelete
	case "PURGE":
		return jetstream.KeyValuePurge
	}
	switch h.Get(jetstream.MarkerReasonHeader) {
	case "MaxAge", "Purge":
		return jetstream.KeyValuePurge
	case "Remove":
		return jetstream.KeyValueDelete
	}
	return jetstream.KeyValuePut
}

// Put stores value under key whatever is there and returns its revision.
func (kv *KV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if !keyValid(key, validKeyRe) {
		return 0, jetstream.ErrInvalidKey
	}
	ack, err := kv.js.Publish(ctx, kv.pre+key, value)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// PutString is Put of a string.
func (kv *KV) PutString(ctx context.Context, key string, value string) (uint64, error) {
	return kv.Put(ctx, key, []byte(value))
}

// Create stores value under key unless the key holds a value (a delete marker does not
// count), or fails with an error matching jetstream.ErrKeyExists. jetstream.KeyTTL is honoured.
func (kv *KV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return 0, err
	}
	ttl, err := durationField(o, "ttl")
	if err != nil {
		return 0, err
	}
	rev, err := kv.write(ctx, key, value, 0, ttl)
	if err == nil {
		return rev, nil
	}
	if e, gerr := kv.latest(ctx, key); errors.Is(gerr, jetstream.ErrKeyDeleted) {
		return kv.write(ctx, key, value, e.Revision(), ttl)
	}
	if isWrongLastSeq(err) {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("%w: key exists", err)
		}
		return 0, fmt.Errorf("%w: %w", err, jetstream.ErrKeyExists)
	}
	return 0, err
}

// Update stores value under key if the key's latest revision is revision, or fails with an
// error matching jetstream.ErrKeyRevisionMismatch (and the server's APIError).
func (kv *KV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	rev, err := kv.write(ctx, key, value, revision, 0)
	return rev, revisionMismatch(err)
}

func (kv *KV) write(ctx context.Context, key string, value []byte, revision uint64, ttl time.Duration) (uint64, error) {
	if !keyValid(key, validKeyRe) {
		return 0, jetstream.ErrInvalidKey
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(revision)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	ack, err := kv.js.PublishMsg(ctx, &nats.Msg{Subject: kv.pre + key, Header: nats.Header{}, Data: value}, opts...)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// isWrongLastSeq reports a "wrong last sequence" answer: 10071, or 10164 on a replicated
// stream with a write to the key in flight.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func revisionMismatch(err error) error {
	if err != nil && isWrongLastSeq(err) {
		return fmt.Errorf("%w: %w", err, jetstream.ErrKeyRevisionMismatch)
	}
	return err
}

// Delete places a delete marker on key (its history stays); jetstream.LastRevision makes it
// conditional.
func (kv *KV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return kv.mark(ctx, key, false, opts)
}

// Purge places a purge marker on key, which removes its history.
func (kv *KV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return kv.mark(ctx, key, true, opts)
}

func (kv *KV) mark(ctx context.Context, key string, purge bool, opts []jetstream.KVDeleteOpt) error {
	if !keyValid(key, validKeyRe) {
		return jetstream.ErrInvalidKey
	}
	o, err := applyOptions(opts)
	if err != nil {
		return err
	}
	revision, err := uintField(o, "revision")
	if err != nil {
		return err
	}
	ttl, err := durationField(o, "ttl")
	if err != nil {
		return err
	}
	m := nats.NewMsg(kv.pre + key)
	var pubOpts []jetstream.PublishOpt
	if purge {
		m.Header.Set("KV-Operation", "PURGE")
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		if ttl > 0 {
			pubOpts = append(pubOpts, jetstream.WithMsgTTL(ttl))
		}
	} else {
		if ttl > 0 {
			return jetstream.ErrTTLOnDeleteNotSupported
		}
		m.Header.Set("KV-Operation", "DEL")
	}
	if revision != 0 {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(revision, 10))
	}
	_, err = kv.js.PublishMsg(ctx, m, pubOpts...)
	return revisionMismatch(err)
}

// Watch watches the keys matching keys (wildcards allowed); see WatchFiltered.
func (kv *KV) Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	return kv.WatchFiltered(ctx, []string{keys}, opts...)
}

// WatchAll watches every key; see WatchFiltered.
func (kv *KV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	return kv.WatchFiltered(ctx, nil, opts...)
}

// WatchFiltered sends the latest entry of each key matching keys (all with none), then nil,
// then every change, until Stop or ctx ends, when Updates is closed. It takes nats.go's watch
// options (UpdatesOnly, IgnoreDeletes, IncludeHistory, MetaOnly, ResumeFromRevision).
func (kv *KV) WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	for _, k := range keys {
		if !keyValid(k, validSearchKeyRe) {
			return nil, fmt.Errorf("%w: %s", jetstream.ErrInvalidKey, "key cannot be empty and must be a valid NATS subject")
		}
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	var w watchOptions
	for name, p := range map[string]*bool{"ignoreDeletes": &w.ignoreDeletes, "includeHistory": &w.includeHistory, "updatesOnly": &w.updatesOnly, "metaOnly": &w.metaOnly} {
		if *p, err = boolField(o, name); err != nil {
			return nil, err
		}
	}
	if w.resumeFrom, err = uintField(o, "resumeFromRevision"); err != nil {
		return nil, err
	}
	filters := make([]string, 0, max(len(keys), 1))
	for _, k := range keys {
		filters = append(filters, kv.pre+k)
	}
	if len(filters) == 0 {
		filters = append(filters, kv.pre+">")
	}
	return kv.watch(ctx, filters, w)
}

// Keys returns every key that holds a value, sorted, or jetstream.ErrNoKeysFound.
func (kv *KV) Keys(ctx context.Context, opts ...jetstream.WatchOpt) ([]string, error) {
	w, err := kv.WatchAll(ctx, append(opts, jetstream.IgnoreDeletes(), jetstream.MetaOnly())...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var keys []string
	for e := range w.Updates() {
		if e == nil {
			break
		}
		keys = append(keys, e.Key())
	}
	if len(keys) == 0 {
		return nil, jetstream.ErrNoKeysFound
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// ListKeys lists every key that holds a value.
func (kv *KV) ListKeys(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	w, err := kv.WatchAll(ctx, append(opts, jetstream.IgnoreDeletes(), jetstream.MetaOnly())...)
	if err != nil {
		return nil, err
	}
	return listKeys(ctx, w), nil
}

// ListKeysFiltered lists the keys matching filters that hold a value.
func (kv *KV) ListKeysFiltered(ctx context.Context, filters ...string) (jetstream.KeyLister, error) {
	w, err := kv.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, err
	}
	return listKeys(ctx, w), nil
}

// History returns every stored entry of key, oldest first, or jetstream.ErrKeyNotFound.
func (kv *KV) History(ctx context.Context, key string, opts ...jetstream.WatchOpt) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.Watch(ctx, key, append(opts, jetstream.IncludeHistory())...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var entries []jetstream.KeyValueEntry
	for e := range w.Updates() {
		if e == nil {
			break
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, jetstream.ErrKeyNotFound
	}
	return entries, nil
}

// ErrNeedsStreamAPI is returned by the KV operations that only the stream API can do.
var ErrNeedsStreamAPI = errors.New("needs the stream API ($JS.API.STREAM.*), which service users are denied: use the admin identity")

// PurgeDeletes is refused: it purges the stream (STREAM.PURGE), the administrator's call.
func (kv *KV) PurgeDeletes(context.Context, ...jetstream.KVPurgeOpt) error {
	return fmt.Errorf("purge deletes of bucket %s: %w", kv.bucket, ErrNeedsStreamAPI)
}

// Status asks the server for the bucket's configuration and state (STREAM.INFO on its
// stream), which works for the admin identity only.
func (kv *KV) Status(ctx context.Context) (jetstream.KeyValueStatus, error) {
	full, err := kv.js.KeyValue(ctx, kv.bucket)
	if err != nil {
		return nil, fmt.Errorf("status of bucket %s (%w): %w", kv.bucket, ErrNeedsStreamAPI, err)
	}
	return full.Status(ctx)
}

// kvEntry is one entry of a bucket.
type kvEntry struct {
	bucket, key     string
	value           []byte
	revision, delta uint64
	created         time.Time
	op              jetstream.KeyValueOp
}

func (e *kvEntry) Bucket() string                  { return e.bucket }
func (e *kvEntry) Key() string                     { return e.key }
func (e *kvEntry) Value() []byte                   { return e.value }
func (e *kvEntry) Revision() uint64                { return e.revision }
func (e *kvEntry) Created() time.Time              { return e.created }
func (e *kvEntry) Delta() uint64                   { return e.delta }
func (e *kvEntry) Operation() jetstream.KeyValueOp { return e.op }

type keyLister struct {
	w    jetstream.KeyWatcher
	keys chan string
}

func listKeys(ctx context.Context, w jetstream.KeyWatcher) *keyLister {
	l := &keyLister{w: w, keys: make(chan string, 256)}
	go func() {
		defer close(l.keys)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok || e == nil {
					return
				}
				select {
				case l.keys <- e.Key():
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

func (l *keyLister) Keys() <-chan string { return l.keys }
func (l *keyLister) Stop() error         { return l.w.Stop() }

// nats.go's KV options are functions over unexported structs (watchOpts, createOpts,
// deleteOpts): applyOptions runs them, in order, on a fresh struct of that type and returns
// it, whose fields are then read by name. A nats.go release that changes these fails
// TestKVOptions, not a service.
func applyOptions[O any](opts []O) (reflect.Value, error) {
	var target reflect.Value
	for _, opt := range opts {
		if reflect.ValueOf(opt).Kind() == reflect.Invalid {
			continue // a nil option, which nats.go skips too
		}
		fn := reflect.ValueOf(opt)
		t := fn.Type()
		if t.Kind() != reflect.Func || t.NumIn() != 1 || t.In(0).Kind() != reflect.Pointer ||
			t.In(0).Elem().Kind() != reflect.Struct || t.NumOut() != 1 {
			return reflect.Value{}, fmt.Errorf("bus: nats.go option %T is not supported", opt)
		}
		if !target.IsValid() {
			target = reflect.New(t.In(0).Elem())
		} else if target.Type() != t.In(0) {
			return reflect.Value{}, fmt.Errorf("bus: nats.go option %T does not go with the others", opt)
		}
		if err, _ := fn.Call([]reflect.Value{target})[0].Interface().(error); err != nil {
			return reflect.Value{}, err
		}
	}
	if !target.IsValid() {
		return reflect.Value{}, nil
	}
	return target.Elem(), nil
}

func optionField(o reflect.Value, name string, kind reflect.Kind) (reflect.Value, bool, error) {
	if !o.IsValid() {
		return reflect.Value{}, false, nil
	}
	f := o.FieldByName(name)
	if !f.IsValid() || f.Kind() != kind {
		return reflect.Value{}, false, fmt.Errorf("bus: nats.go option struct %s has no %s %s", o.Type(), kind, name)
	}
	return f, true, nil
}

func boolField(o reflect.Value, name string) (bool, error) {
	f, ok, err := optionField(o, name, reflect.Bool)
	if !ok {
		return false, err
	}
	return f.Bool(), nil
}

func uintField(o reflect.Value, name string) (uint64, error) {
	f, ok, err := optionField(o, name, reflect.Uint64)
	if !ok {
		return 0, err
	}
	return f.Uint(), nil
}

func durationField(o reflect.Value, name string) (time.Duration, error) {
	f, ok, err := optionField(o, name, reflect.Int64)
	if !ok {
		return 0, err
	}
	return time.Duration(f.Int()), nil
}
