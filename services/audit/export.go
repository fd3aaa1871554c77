package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
)

// Manifest describes an export, written beside it as FILE.manifest.json.
type Manifest struct {
	File       string    `json:"file"`
	Count      uint64    `json:"count"`
	FirstSeq   uint64    `json:"first_seq"`
	LastSeq    uint64    `json:"last_seq"`
	FinalHash  string    `json:"final_hash"`
	SHA256     string    `json:"sha256"`
	ExportedAt time.Time `json:"exported_at"`
}

// Export writes the records from..to (zero: the whole stream) to path as JSON Lines, exactly as
// stored, verifying the chain on the way, and writes the manifest beside it. A break in the
// chain stops the export with the *chain.BreakError, leaving no file behind.
func Export(ctx context.Context, js jetstream.JetStream, from, to uint64, path string, progress func(done, total uint64)) (Manifest, error) {
	s, err := js.Stream(ctx, topology.StreamAudit)
	if err != nil {
		return Manifest{}, fmt.Errorf("audit stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("audit stream: %w", err)
	}
	first, last := max(from, info.State.FirstSeq), info.State.LastSeq
	if to != 0 {
		last = min(to, last)
	}
	if info.State.Msgs == 0 || first > last {
		return Manifest{}, errors.New("export: no records in that range")
	}
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return Manifest{}, err
	}
	defer os.Remove(tmp)
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	var rep VerifyReport
	err = walk(ctx, js, first, last, progress, &rep, nil, func(raw []byte) error {
		if _, err := w.Write(raw); err != nil {
			return err
		}
		return w.WriteByte('\n')
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return Manifest{}, err
	}
	m := Manifest{
		File: filepath.Base(path), Count: rep.Records, FirstSeq: first, LastSeq: rep.Last,
		FinalHash: rep.LastHash, SHA256: hex.EncodeToString(sum.Sum(nil)), ExportedAt: time.Now().UTC(),
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(path+".manifest.json", append(b, '\n'), 0o644); err != nil {
		return m, err
	}
	return m, nil
}
