// Package offerlink signs and verifies the tokens in offers' proposal links. Offer assembly
// signs one per offer and channel; ingress verifies it when the user follows the link and
// redirects to the bank's application form. A token names the application (search_id), the
// offer, the channel, where to send the user and until when; an HMAC-SHA256 over all of it
// makes a tampered token fail, and the key never leaves the bank.
//
// A token is "v1." + base64url(JSON claims) + "." + base64url(HMAC-SHA256(key, "v1." + the
// encoded claims)). Several keys may verify at once, so that a key can be rotated while links
// signed with the previous one are still in Yandex's answers.
package offerlink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// MinKeyBytes is the shortest key accepted: shorter keys are guessable.
const MinKeyBytes = 16

// MaxTokenBytes bounds a token read from a request, so that verification never works on
// arbitrary amounts of input.
const MaxTokenBytes = 4096

// Channels a link is for.
const (
	ChannelWeb  = "web"  // propousal_link.link: opened in a browser, via ingress
	ChannelDeep = "deep" // propousal_link.deep: opened by the bank's app, which verifies it with the bank
)

const version = "v1."

var enc = base64.RawURLEncoding.Strict()

// Claims are what a token says.
type Claims struct {
	SearchID string `json:"s"`
	OfferID  string `json:"o"`
	Channel  string `json:"c"`
	// Target is where the user is sent: the bank's application form with the offer preselected.
	Target string `json:"t,omitempty"`
	// Expires is when the link stops working, in Unix seconds.
	Expires int64 `json:"e"`
}

// ExpiresAt is Expires as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0).UTC() }

// Errors of Verify, read with errors.Is.
var (
	// ErrMalformed: the token is not one this package makes, or was altered.
	ErrMalformed = errors.New("offerlink: malformed or tampered token")
	// ErrExpired: the token is genuine but its link has expired.
	ErrExpired = errors.New("offerlink: link expired")
)

// Signer makes and checks tokens. It is safe for concurrent use.
type Signer struct {
	keys [][]byte // keys[0] signs; every key verifies
}

// NewSigner returns a signer that signs with the first key and verifies with any of them.
func NewSigner(keys ...[]byte) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("offerlink: no key")
	}
	s := &Signer{}
	for i, k := range keys {
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("offerlink: key %d is %d bytes, want at least %d", i+1, len(k), MinKeyBytes)
		}
		s.keys = append(s.keys, append([]byte(nil), k...))
	}
	return s, nil
}

// ParseKeys splits a comma-separated list of keys (the first one signs), as configured.
func ParseKeys(list string) [][]byte {
	var keys [][]byte
	for _, k := range strings.Split(list, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, []byte(k))
		}
	}
	return keys
}

// Sign returns the token for c.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.SearchID == "" || c.OfferID == "" || (c.Channel != ChannelWeb && c.Channel != ChannelDeep) || c.Expires <= 0 {
		return "", fmt.Errorf("offerlink: incomplete claims %+v", c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	body := version + enc.EncodeToString(b)
	return body + "." + enc.EncodeToString(mac(s.keys[0], body)), nil
}

// Verify checks a token and returns its claims: ErrMalformed when it is not genuine, ErrExpired
// (with the claims) when it is genuine but expired at now.
func (s *Signer) Verify(token string, now time.Time) (Claims, error) {
	var c Claims
	if len(token) > MaxTokenBytes || !strings.HasPrefix(token, version) {
		return c, ErrMalformed
	}
	dot := strings.LastIndexByte(token, '.')
	if dot <= len(version) {
		return c, ErrMalformed
	}
	body, sig := token[:dot], token[dot+1:]
	got, err := enc.DecodeString(sig)
	if err != nil {
		return c, ErrMalformed
	}
	genuine := false
	for _, k := range s.keys {
		if hmac.Equal(got, mac(k, body)) {
			genuine = true
			break
		}
	}
	if !genuine {
		return c, ErrMalformed
	}
	raw, err := enc.DecodeString(body[len(version):])
	if err != nil || json.Unmarshal(raw, &c) != nil || c.SearchID == "" || c.OfferID == "" {
		return Claims{}, ErrMalformed
	}
	if !now.Before(c.ExpiresAt()) {
		return c, ErrExpired
	}
	return c, nil
}

func mac(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// WebLink is the proposal link through ingress for a token: base (ingress's public URL, e.g.
// https://api.bank.example) + /offers/ + token.
func WebLink(base, token string) string {
	return strings.TrimSuffix(base, "/") + Path + url.PathEscape(token)
}

// Path is where ingress serves proposal links; the token follows.
const Path = "/offers/"
