package chain

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckpointSignature(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	key, err := ParseSigningKey(base64.StdEncoding.EncodeToString(seed))
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	hash := strings.Repeat("ab", 32)
	at := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	c, err := SignCheckpoint(key, 42, hash, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifySignature(pub); err != nil {
		t.Fatalf("fresh checkpoint: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Checkpoint)
	}{
		{"seq moved", func(c *Checkpoint) { c.Seq = 41 }},
		{"hash changed", func(c *Checkpoint) { c.Hash = strings.Repeat("cd", 32) }},
		{"time changed", func(c *Checkpoint) { c.Time = c.Time.Add(time.Second) }},
		{"signature garbled", func(c *Checkpoint) { c.Signature = "AAAA" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forged := c
			tt.change(&forged)
			if err := forged.VerifySignature(pub); !errors.Is(err, ErrBadSignature) {
				t.Errorf("VerifySignature = %v, want ErrBadSignature", err)
			}
		})
	}
	other, _ := ParseSigningKey(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err := c.VerifySignature(other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key verifies: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParseSigningKey(bad); err == nil {
			t.Errorf("ParseSigningKey(%q) accepted", bad)
		}
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
}
