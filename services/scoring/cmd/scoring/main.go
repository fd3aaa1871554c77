// Command scoring decides received applications ("serve", the default), and loads client
// profiles into the clients bucket ("import-clients FILE").
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/scoring"
)

const usage = `usage:
  scoring [serve]               decide applications (settings from the environment)
  scoring import-clients FILE   load client profiles from CSV or JSON Lines into the clients bucket
                                (NATS_URL and LOANFLOW_PHONE_KEY from the environment); each bad
                                line and the progress are written to stderr as the file is read
`

func main() {
	args := os.Args[1:]
	var cfg scoring.Config
	switch {
	case len(args) == 0 || args[0] == "serve":
		os.Exit(service.Serve("scoring", &cfg, func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error {
			cfg.Logger, cfg.Ops = log, ops
			return scoring.Run(ctx, cfg)
		}))
	case args[0] == "import-clients" && len(args) == 2:
		os.Exit(service.Main("scoring-import", &cfg, func(ctx context.Context, log *slog.Logger) error {
			cfg.Logger = log
			return importClients(ctx, cfg, args[1], os.Stderr)
		}))
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}

// importClients imports path, writing each bad line and the progress to out as the file is
// read, then a summary. It fails when the file could not be read through or had bad lines.
func importClients(ctx context.Context, cfg scoring.Config, path string, out io.Writer) error {
	stats, err := scoring.Import(ctx, cfg, path, out)
	fmt.Fprintf(out, "%s: %d records, %d imported, %d rejected\n", path, stats.Records, stats.Imported, stats.Rejected)
	if err != nil {
		return err
	}
	if stats.Rejected > 0 {
		return fmt.Errorf("%d bad lines", stats.Rejected)
	}
	return nil
}
