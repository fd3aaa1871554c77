package chain

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Checkpoint vouches for the chain up to Seq: the record at Seq has hash Hash. It is signed
// with the audit's Ed25519 key and stored outside the chain, so that cutting records off the
// tail of the chain (which leaves what remains internally consistent) is still detected: the
// chain must reach Seq with that hash.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	// Signature is the base64 Ed25519 signature of SignedBytes.
	Signature string `json:"signature"`
}

// SignedBytes is what the signature covers: a versioned, line-separated text that outside
// tools can rebuild.
func (c Checkpoint) SignedBytes() []byte {
	return []byte("loanflow-audit-checkpoint/v1\n" + strconv.FormatUint(c.Seq, 10) + "\n" + c.Hash + "\n" +
		c.Time.UTC().Format(time.RFC3339Nano) + "\n")
}

// SignCheckpoint returns the signed checkpoint of the record seq with hash hash.
func SignCheckpoint(key ed25519.PrivateKey, seq uint64, hash string, at time.Time) (Checkpoint, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Checkpoint{}, errors.New("chain: checkpoint key is not an Ed25519 private key")
	}
	if !isHash(hash) {
		return Checkpoint{}, fmt.Errorf("chain: checkpoint hash %q is not a SHA-256 hex digest", hash)
	}
	c := Checkpoint{Seq: seq, Hash: hash, Time: at.UTC()}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.SignedBytes()))
	return c, nil
}

// ErrBadSignature means a checkpoint was not signed by the key it is checked with.
var ErrBadSignature = errors.New("checkpoint signature does not verify")

// VerifySignature checks the checkpoint's signature with the audit's public key.
func (c Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return ErrBadSignature
	}
	return nil
}

// ParseSigningKey reads an Ed25519 signing key given as base64: the 32-byte seed or the
// 64-byte private key.
func ParseSigningKey(s string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("signing key is not base64")
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	}
	return nil, fmt.Errorf("signing key is %d bytes, want a 32-byte Ed25519 seed", len(b))
}

// ParsePublicKey reads an Ed25519 public key given as base64.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("verify key is not a base64 32-byte Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}
