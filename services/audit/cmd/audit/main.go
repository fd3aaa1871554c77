// Command audit records every loan.> event into the AUDIT stream (no arguments, or "serve"),
// and gives compliance its tools: replay, verify and export.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/audit"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

const usage = `usage:
  audit [serve]                 record every loan.> event (settings from the environment)
  audit replay [flags]          print audit records in order
    --search-id ID              one application's history
    --phone NUMBER              every application of one client (hashed with LOANFLOW_PHONE_KEY,
                                never stored or printed)
    --type TYPE                 one event type, e.g. loan.application.scored.v1
    --since, --until RFC3339    a time window
    --format table|jsonl|csv    output format (default table)
  audit verify [--from N] [--to N]
                                check every record's hash and link and the latest signed
                                checkpoint; exit 1 naming the first broken sequence
  audit export --out FILE [--from N] [--to N]
                                write records as JSON Lines with FILE.manifest.json
Environment: NATS_URL (default nats://127.0.0.1:4222); LOANFLOW_AUDIT_VERIFY_KEY (base64
Ed25519 public key) or LOANFLOW_AUDIT_SIGNING_KEY for verify; LOANFLOW_PHONE_KEY for --phone.
`

// tool is the environment the compliance subcommands read.
type tool struct {
	Bus        bus.Settings
	PhoneKey   string `env:"LOANFLOW_PHONE_KEY"`
	SigningKey string `env:"LOANFLOW_AUDIT_SIGNING_KEY"`
	VerifyKey  string `env:"LOANFLOW_AUDIT_VERIFY_KEY"`
}

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		var cfg audit.Config
		os.Exit(service.Serve("audit", &cfg, func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error {
			cfg.Logger, cfg.Ops = log, ops
			return audit.Run(ctx, cfg)
		}))
	case "replay", "verify", "export":
		os.Exit(runTool(cmd, args, os.Stdout, os.Stderr))
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}

// runTool runs one compliance subcommand; it returns the exit status.
func runTool(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var (
		o            audit.ReplayOptions
		since, until string
		phone, out   string
		from, to     uint64
	)
	switch cmd {
	case "replay":
		fs.StringVar(&o.SearchID, "search-id", "", "one application's search_id")
		fs.StringVar(&phone, "phone", "", "one client's phone number (10 digits)")
		fs.StringVar(&o.Type, "type", "", "one event type")
		fs.StringVar(&since, "since", "", "records at or after this time (RFC 3339)")
		fs.StringVar(&until, "until", "", "records at or before this time (RFC 3339)")
		fs.StringVar(&o.Format, "format", "table", "table, jsonl or csv")
	case "export":
		fs.StringVar(&out, "out", "", "file to write")
		fallthrough
	case "verify":
		fs.Uint64Var(&from, "from", 0, "first sequence (default: the first record)")
		fs.Uint64Var(&to, "to", 0, "last sequence (default: the last record)")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "audit %s: %s\n", cmd, fmt.Sprintf(format, a...))
		return code
	}
	var t tool
	if err := env.Parse(&t); err != nil {
		return fail(2, "%v", err)
	}
	for _, tv := range []struct {
		in  string
		out *time.Time
	}{{since, &o.Since}, {until, &o.Until}} {
		if tv.in == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, tv.in)
		if err != nil {
			return fail(2, "%q is not an RFC 3339 time", tv.in)
		}
		*tv.out = v
	}
	if phone != "" {
		h, err := pseudonym.New([]byte(t.PhoneKey))
		if err != nil {
			return fail(2, "--phone needs LOANFLOW_PHONE_KEY: %v", err)
		}
		o.PhoneHash = h.Phone(phone)
	}
	if cmd == "export" && out == "" {
		return fail(2, "--out FILE is required")
	}

	nc, js, err := bus.Connect(t.Bus.URL, "audit-"+cmd, slog.New(slog.DiscardHandler))
	if err != nil {
		return fail(1, "%v", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	switch cmd {
	case "replay":
		n, err := audit.Replay(ctx, js, o, stdout)
		if err != nil {
			return fail(1, "%v", err)
		}
		fmt.Fprintf(stderr, "%d records\n", n)
	case "verify":
		return verify(ctx, js, t, from, to, stdout, stderr)
	case "export":
		bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("exporting"),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond))
		m, err := audit.Export(ctx, js, from, to, out, func(done, total uint64) {
			bar.ChangeMax64(int64(total))
			_ = bar.Set64(int64(done))
		})
		_ = bar.Finish()
		fmt.Fprintln(stderr)
		if err != nil {
			return fail(1, "%v", err)
		}
		fmt.Fprintf(stdout, "exported %d records, %d..%d, final hash %s, to %s (manifest %s.manifest.json)\n",
			m.Count, m.FirstSeq, m.LastSeq, m.FinalHash, out, out)
	}
	return 0
}

func verify(ctx context.Context, js jetstream.JetStream, t tool, from, to uint64, stdout, stderr io.Writer) int {
	var pub ed25519.PublicKey
	switch {
	case t.VerifyKey != "":
		k, err := chain.ParsePublicKey(t.VerifyKey)
		if err != nil {
			fmt.Fprintf(stderr, "audit verify: LOANFLOW_AUDIT_VERIFY_KEY: %v\n", err)
			return 2
		}
		pub = k
	case t.SigningKey != "":
		k, err := chain.ParseSigningKey(t.SigningKey)
		if err != nil {
			fmt.Fprintf(stderr, "audit verify: LOANFLOW_AUDIT_SIGNING_KEY: %v\n", err)
			return 2
		}
		pub = k.Public().(ed25519.PublicKey)
	}
	start := time.Now()
	rep, err := audit.Verify(ctx, js, audit.VerifyOptions{From: from, To: to, PublicKey: pub})
	took := time.Since(start)
	var br *chain.BreakError
	switch {
	case errors.As(err, &br):
		fmt.Fprintf(stdout, "BROKEN at sequence %d: %v\n", br.Seq, br)
		return 1
	case err != nil:
		fmt.Fprintf(stdout, "FAILED after %d records (last good %d): %v\n", rep.Records, rep.Last, err)
		return 1
	}
	cp := "no checkpoint checked for a range"
	switch {
	case from == 0 && to == 0 && rep.Checkpoint != nil:
		cp = fmt.Sprintf("signed checkpoint at %d matches", rep.Checkpoint.Seq)
	case from == 0 && to == 0:
		cp = "nothing recorded yet"
	}
	fmt.Fprintf(stdout, "OK: %d records, %d..%d, head hash %s; %s (%.0f records/s)\n",
		rep.Records, rep.First, rep.Last, rep.LastHash, cp, float64(rep.Records)/max(took.Seconds(), 1e-9))
	return 0
}
