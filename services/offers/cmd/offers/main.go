// Command offers assembles answers from scored applications against NATS_URL.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/offers"
)

func main() {
	var cfg offers.Config
	os.Exit(service.Serve("offers", &cfg, func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error {
		cfg.Logger, cfg.Ops = log, ops
		return offers.Run(ctx, cfg)
	}))
}
