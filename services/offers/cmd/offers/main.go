// Command offers assembles answers from scored applications against NATS_URL.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/offers"
)

func main() {
	var cfg offers.Config
	os.Exit(service.Main("offers", &cfg, func(ctx context.Context, log *slog.Logger) error {
		cfg.Logger = log
		return offers.Run(ctx, cfg)
	}))
}
