// Package pseudonym turns a phone number into what loanflow may store and log: a keyed hash
// (HMAC-SHA256) that joins records without revealing the number, and a mask for people.
// The key comes from configuration; without it the hash of a 10-digit number could be
// reversed by trying all 10^10 numbers.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync"
)

// MinKeyLen is the shortest key accepted: 128 bits.
const MinKeyLen = 16

// ErrShortKey means the configured key is too short to resist a brute-force search.
var ErrShortKey = errors.New("pseudonym: key shorter than 16 bytes")

// Hasher computes keyed hashes. It is safe for concurrent use.
type Hasher struct {
	pool sync.Pool
}

// New returns a Hasher for key.
func New(key []byte) (*Hasher, error) {
	if len(key) < MinKeyLen {
		return nil, ErrShortKey
	}
	k := append([]byte(nil), key...)
	return &Hasher{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}, nil
}

// Sum returns the hex HMAC-SHA256 of the parts, each length-prefixed so that no two part
// lists share a hash.
func (h *Hasher) Sum(parts ...string) string {
	m := h.pool.Get().(hash.Hash)
	defer h.pool.Put(m)
	m.Reset()
	var n [4]byte
	for _, p := range parts {
		l := len(p)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Phone returns the keyed hash of a 10-digit phone number: the key of its client profile and
// its stand-in in events and the audit.
func (h *Hasher) Phone(phone string) string { return h.Sum("phone", phone) }

// Mask shows the first two and last two digits of a phone number: 9330445040 → 93******40.
func Mask(phone string) string {
	if len(phone) <= 4 {
		return strings.Repeat("*", len(phone))
	}
	return phone[:2] + strings.Repeat("*", len(phone)-4) + phone[len(phone)-2:]
}
