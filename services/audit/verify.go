package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

// VerifyOptions choose what to verify.
type VerifyOptions struct {
	// From and To bound the range by sequence; zero means the stream's first and last record.
	// A range that starts after the first record trusts its first record's prev_hash.
	From, To uint64
	// PublicKey checks the latest checkpoint's signature.
	PublicKey ed25519.PublicKey
	// Progress, when set, is called as records are verified.
	Progress func(verified, total uint64)
}

// VerifyReport says how far the chain was proven.
type VerifyReport struct {
	First, Last uint64
	Records     uint64
	LastHash    string
	// Checkpoint is the latest checkpoint, when one was found.
	Checkpoint *chain.Checkpoint
}

// ErrTruncated means the chain ends before the latest signed checkpoint, or disagrees with it.
var ErrTruncated = errors.New("audit chain does not reach its latest checkpoint")

// Verify walks the chain (or a range of it) in stream order, checks every record's sequence,
// hash and link to the one before, then checks the latest checkpoint: its signature, and that
// the chain reaches it with the same hash. The first break is returned as *chain.BreakError,
// a checkpoint mismatch as ErrTruncated.
func Verify(ctx context.Context, js jetstream.JetStream, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	s, err := js.Stream(ctx, topology.StreamAudit)
	if err != nil {
		return rep, fmt.Errorf("audit stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit stream: %w", err)
	}
	first, last := max(o.From, info.State.FirstSeq), info.State.LastSeq
	if o.To != 0 {
		last = min(o.To, last)
	}
	rep.First = first
	var hashAt map[uint64]string
	cp, cpErr := latestCheckpoint(ctx, js)
	if cp != nil {
		hashAt = map[uint64]string{cp.Seq: ""}
		rep.Checkpoint = cp
	}
	if info.State.Msgs > 0 && first <= last {
		if err := walk(ctx, js, first, last, o.Progress, &rep, hashAt, nil); err != nil {
			return rep, err
		}
	}
	if o.From != 0 || o.To != 0 {
		return rep, nil // a range: the checkpoint speaks for the whole chain
	}
	return rep, checkCheckpoint(ctx, s, info.State.LastSeq, cp, cpErr, hashAt, o.PublicKey)
}

// walk reads records first..last in order, verifying each, and passes each verified record's
// stored bytes to each (when set).
func walk(ctx context.Context, js jetstream.JetStream, first, last uint64, progress func(uint64, uint64), rep *VerifyReport,
	hashAt map[uint64]string, each func(raw []byte) error) error {
	cons, err := js.OrderedConsumer(ctx, topology.StreamAudit, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer it.Stop()
	var v *chain.Verifier
	total := last - first + 1
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		seq := md.Sequence.Stream
		if seq > last {
			return nil
		}
		rec, err := chain.ParseRecord(m.Data())
		if err != nil {
			return &chain.BreakError{Seq: seq, Reason: chain.ReasonMalformed, Err: err}
		}
		if v == nil {
			// The chain starts at genesis; a range starts from its first record's link.
			prev := chain.GenesisHash
			if seq > 1 {
				prev = rec.PrevHash
			}
			v = chain.NewVerifier(seq-1, prev)
		}
		if rec.Seq != seq {
			return &chain.BreakError{Seq: seq, Reason: chain.ReasonSeqGap, Want: fmt.Sprint(seq), Got: fmt.Sprint(rec.Seq)}
		}
		if err := v.Verify(rec); err != nil {
			return err
		}
		if _, ok := hashAt[seq]; ok {
			hashAt[seq] = rec.Hash
		}
		if each != nil {
			if err := each(m.Data()); err != nil {
				return err
			}
		}
		rep.Records++
		rep.Last, rep.LastHash = seq, rec.Hash
		if progress != nil && (rep.Records%4096 == 0 || seq == last) {
			progress(rep.Records, total)
		}
		if seq == last {
			return nil
		}
	}
}

func latestCheckpoint(ctx context.Context, js jetstream.JetStream) (*chain.Checkpoint, error) {
	kv, err := js.KeyValue(ctx, topology.BucketAuditCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	e, err := kv.Get(ctx, topology.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var cp chain.Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return nil, fmt.Errorf("checkpoint does not decode: %w", err)
	}
	return &cp, nil
}

func checkCheckpoint(ctx context.Context, s jetstream.Stream, lastSeq uint64, cp *chain.Checkpoint, cpErr error, hashAt map[uint64]string, pub ed25519.PublicKey) error {
	if cp == nil {
		if lastSeq == 0 {
			return nil // nothing recorded, nothing to vouch for
		}
		return fmt.Errorf("%w: no checkpoint to check the tail against (%v)", ErrTruncated, cpErr)
	}
	if pub == nil {
		return errors.New("verify: no public key to check the checkpoint's signature")
	}
	if err := cp.VerifySignature(pub); err != nil {
		return fmt.Errorf("checkpoint at %d: %w", cp.Seq, err)
	}
	if cp.Seq > lastSeq {
		return fmt.Errorf("%w: checkpoint vouches for record %d, the stream ends at %d", ErrTruncated, cp.Seq, lastSeq)
	}
	got := hashAt[cp.Seq]
	if got == "" {
		raw, err := s.GetMsg(ctx, cp.Seq)
		if err != nil {
			return fmt.Errorf("%w: record %d of the checkpoint: %v", ErrTruncated, cp.Seq, err)
		}
		rec, err := chain.ParseRecord(raw.Data)
		if err != nil {
			return &chain.BreakError{Seq: cp.Seq, Reason: chain.ReasonMalformed, Err: err}
		}
		got = rec.Hash
	}
	if got != cp.Hash {
		return fmt.Errorf("%w: record %d has hash %s, the checkpoint says %s", ErrTruncated, cp.Seq, got, cp.Hash)
	}
	return nil
}
