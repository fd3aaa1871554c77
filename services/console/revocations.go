package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// revocations records the sessions signed out before they expire where every console
// replica sees them: the console_revocations bucket. A revocation is written with its
// session's remaining lifetime as the key's TTL, so it lasts exactly as long as the cookie
// could be presented, and the bucket holds only live revocations.
type revocations struct {
	kv      jetstream.KeyValue
	timeout time.Duration
}

// revocationKey is the bucket key of a session id: its SHA-256, so that the bucket holds no
// session id a reader could match against a cookie seen elsewhere.
func revocationKey(id string) string {
	sum := sha256.Sum256([]byte("loanflow-console-revocation:" + id))
	return hex.EncodeToString(sum[:])
}

// revoke records that the session id is signed out until it expires.
func (r *revocations) revoke(ctx context.Context, id string, expires, now time.Time) error {
	left := expires.Sub(now)
	if left <= 0 {
		return nil // the cookie is refused as expired already
	}
	// Per-key TTLs are whole seconds, at least one: round up, never short.
	ttl := max((left+time.Second-1)/time.Second*time.Second, time.Second)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	_, err := r.kv.Create(ctx, revocationKey(id), []byte(expires.UTC().Format(time.RFC3339)), jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil // signed out twice (two tabs, or a retried POST)
	}
	if err != nil {
		return fmt.Errorf("record the sign-out: %w", err)
	}
	return nil
}

// revoked reports whether the session id was signed out, on any replica.
func (r *revocations) revoked(ctx context.Context, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	_, err := r.kv.Get(ctx, revocationKey(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("look up the session's revocation: %w", err)
}
