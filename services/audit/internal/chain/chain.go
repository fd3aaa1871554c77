package chain

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// encoders lets the package-level functions reuse buffers across calls.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// Canonical returns the bytes a record's Hash is the SHA-256 of: a JSON object holding every
// field but hash, in the order seq, time, event_type, search_id, stage, correlation_id,
// source_seq, payload, prev_hash. Time is RFC 3339 in UTC with nine fractional digits. The
// payload has no insignificant whitespace and its object keys sorted by their UTF-8 bytes;
// numbers are kept as written, and strings are decoded and re-escaped minimally ('"', '\\'
// and control characters only). Payloads with duplicate keys, invalid UTF-8 or lone
// surrogates have no canonical form. It is exported so that an outside tool can reproduce a
// hash.
func Canonical(r Record) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	return e.appendRecord(nil, &r)
}

// Seal completes r as the record following the one whose hash is prevHash: it sets PrevHash,
// stores Time in UTC and the payload in canonical form, and computes Hash. r.Seq must already
// be the sequence the record will have in the AUDIT stream.
func Seal(r *Record, prevHash string) error {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	return e.seal(r, prevHash)
}

func (e *encoder) seal(r *Record, prevHash string) error {
	if !isHash(prevHash) {
		return fmt.Errorf("chain: prev hash %q is not 64 lowercase hex digits", prevHash)
	}
	if r.Seq == 0 {
		return errors.New("chain: record has no sequence")
	}
	if r.Time.IsZero() {
		return errors.New("chain: record has no time")
	}
	p, err := e.canonicalPayload(r.Payload)
	if err != nil {
		return fmt.Errorf("chain: payload: %w", err)
	}
	r.Time, r.PrevHash, r.Payload = r.Time.UTC(), prevHash, p
	var sum [64]byte
	if err := e.sum(r, &sum); err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	r.Hash = string(sum[:])
	return nil
}

// Chain appends records after a known head. A Chain is one writer's view of the AUDIT stream:
// publish each record expecting the stream's last sequence to be the record's Seq-1, and
// when a publish is not acknowledged, rebuild the Chain from the stream's last record, since
// the head it holds may no longer be the stream's. It is not safe for concurrent use.
type Chain struct {
	enc  encoder
	seq  uint64
	hash string
}

// NewChain returns a Chain whose last record has sequence headSeq and hash headHash; for an
// empty stream, 0 and GenesisHash.
func NewChain(headSeq uint64, headHash string) (*Chain, error) {
	if !isHash(headHash) {
		return nil, fmt.Errorf("chain: head hash %q is not 64 lowercase hex digits", headHash)
	}
	if headSeq == 0 && headHash != GenesisHash {
		return nil, errors.New("chain: an empty chain's head hash must be GenesisHash")
	}
	return &Chain{seq: headSeq, hash: headHash}, nil
}

// Append seals rec, its Time and fields set and its payload pseudonymised, as the record
// after the head (Seq head+1) and makes it the new head. On error the head is unchanged.
func (c *Chain) Append(rec Record) (Record, error) {
	rec.Seq = c.seq + 1
	if err := c.enc.seal(&rec, c.hash); err != nil {
		return Record{}, err
	}
	c.seq, c.hash = rec.Seq, rec.Hash
	return rec, nil
}

// Head returns the sequence and hash of the last record appended or given to NewChain.
func (c *Chain) Head() (seq uint64, hash string) { return c.seq, c.hash }

// Reason says why a record does not verify.
type Reason string

// Reasons of a BreakError.
const (
	// ReasonSeqGap: the record's sequence is not the one after its predecessor's (a record
	// missing, repeated or out of order).
	ReasonSeqGap Reason = "sequence gap"
	// ReasonPrevHash: the record does not point at its predecessor's hash (a record before it
	// altered and re-hashed, or removed).
	ReasonPrevHash Reason = "wrong prev hash"
	// ReasonHash: the record's content does not match its own hash (the record altered).
	ReasonHash Reason = "wrong hash"
	// ReasonMalformed: the record has no canonical encoding, so no hash can match it.
	ReasonMalformed Reason = "malformed record"
)

// BreakError reports where and why a chain does not verify. Read it with errors.As.
type BreakError struct {
	// Seq is the first sequence at which the chain does not hold: for a gap, the sequence
	// that was expected; otherwise the record's own.
	Seq    uint64
	Reason Reason
	// Want and Got are what verification expected and found: sequences for a gap, hex hashes
	// otherwise; empty for a malformed record.
	Want, Got string
	// Err is why a malformed record has no canonical encoding.
	Err error
}

// Error describes the break for an operator.
func (e *BreakError) Error() string {
	switch e.Reason {
	case ReasonSeqGap:
		return fmt.Sprintf("audit chain broken at seq %d: %s: found record seq %s", e.Seq, e.Reason, e.Got)
	case ReasonMalformed:
		return fmt.Sprintf("audit chain broken at seq %d: %s: %v", e.Seq, e.Reason, e.Err)
	}
	return fmt.Sprintf("audit chain broken at seq %d: %s: want %s, got %s", e.Seq, e.Reason, e.Want, e.Got)
}

// Unwrap returns the cause of a malformed record.
func (e *BreakError) Unwrap() error { return e.Err }

// Verify checks that r is the record at sequence wantSeq following the record whose hash is
// prevHash, and that its content matches its hash. It returns a *BreakError when not.
func Verify(r Record, prevHash string, wantSeq uint64) error {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	return e.verify(&r, prevHash, wantSeq)
}

func (e *encoder) verify(r *Record, prevHash string, wantSeq uint64) error {
	if r.Seq != wantSeq {
		return &BreakError{Seq: wantSeq, Reason: ReasonSeqGap,
			Want: strconv.FormatUint(wantSeq, 10), Got: strconv.FormatUint(r.Seq, 10)}
	}
	if r.PrevHash != prevHash {
		return &BreakError{Seq: wantSeq, Reason: ReasonPrevHash, Want: prevHash, Got: r.PrevHash}
	}
	var sum [64]byte
	if err := e.sum(r, &sum); err != nil {
		return &BreakError{Seq: wantSeq, Reason: ReasonMalformed, Err: err}
	}
	if string(sum[:]) != r.Hash {
		return &BreakError{Seq: wantSeq, Reason: ReasonHash, Want: string(sum[:]), Got: r.Hash}
	}
	return nil
}

// Verifier checks a chain record by record, in stream order, and keeps the first break: a
// chain broken once proves nothing after that point. It is not safe for concurrent use.
type Verifier struct {
	enc  encoder
	seq  uint64
	hash string
	err  error
}

// NewVerifier returns a Verifier that expects the record after sequence headSeq with hash
// headHash: 0 and GenesisHash to verify from the start, or a record already trusted to
// verify from there on.
func NewVerifier(headSeq uint64, headHash string) *Verifier {
	return &Verifier{seq: headSeq, hash: headHash}
}

// Verify checks r as the next record. It returns the first *BreakError found, now and for
// every later call.
func (v *Verifier) Verify(r Record) error {
	if v.err != nil {
		return v.err
	}
	if err := v.enc.verify(&r, v.hash, v.seq+1); err != nil {
		v.err = err
		return err
	}
	v.seq, v.hash = r.Seq, r.Hash
	return nil
}

// Head returns the sequence and hash of the last record verified (or those given to
// NewVerifier): what the chain is proven up to.
func (v *Verifier) Head() (seq uint64, hash string) { return v.seq, v.hash }

// Err returns the first break found, or nil.
func (v *Verifier) Err() error { return v.err }

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
