package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

// errNoCase means the bucket holds no case for the search_id.
var errNoCase = errors.New("no such underwriting case")

// store keeps underwriting cases in the underwriting bucket, one per search_id. Every change
// is compare-and-swap on the revision read, so concurrent changes (two officers, an officer
// and the fallback, two console replicas) serialise: the loser re-reads and its transition
// decides again on the state that won.
type store struct {
	kv      jetstream.KeyValue
	timeout time.Duration
}

// create stores the open case unless one exists (a redelivered referral); first writer wins.
func (s *store) create(ctx context.Context, c underwriting.Case) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.kv.Create(ctx, c.SearchID, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("create case %s: %w", c.SearchID, err)
	}
	return nil
}

// get returns the case and its revision.
func (s *store) get(ctx context.Context, searchID string) (underwriting.Case, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	e, err := s.kv.Get(ctx, searchID)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) || errors.Is(err, jetstream.ErrInvalidKey) {
		return underwriting.Case{}, 0, errNoCase
	}
	if err != nil {
		return underwriting.Case{}, 0, fmt.Errorf("read case %s: %w", searchID, err)
	}
	var c underwriting.Case
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return underwriting.Case{}, 0, fmt.Errorf("case %s does not decode: %w", searchID, err)
	}
	return c, e.Revision(), nil
}

// update applies change to the case as stored and writes the result if the case has not
// changed meanwhile; on a lost race it reads again and applies change to the new state. A
// change that fails (the case was taken or decided meanwhile) returns its error and the case
// as it stands.
func (s *store) update(ctx context.Context, searchID string, change func(underwriting.Case) (underwriting.Case, error)) (underwriting.Case, error) {
	for range 20 {
		cur, rev, err := s.get(ctx, searchID)
		if err != nil {
			return cur, err
		}
		next, err := change(cur)
		if err != nil {
			return cur, err
		}
		b, err := json.Marshal(next)
		if err != nil {
			return cur, err
		}
		uctx, cancel := context.WithTimeout(ctx, s.timeout)
		_, err = s.kv.Update(uctx, searchID, b, rev)
		cancel()
		if err == nil {
			return next, nil
		}
		if !wrongRevision(err) {
			return cur, fmt.Errorf("update case %s: %w", searchID, err)
		}
	}
	return underwriting.Case{}, fmt.Errorf("update case %s: it kept changing", searchID)
}

func wrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
