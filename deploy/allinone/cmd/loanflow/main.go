// Command loanflow runs the whole system in one process: an embedded NATS server with
// JetStream and the ingress, scoring, offers, audit and console services. `make run` starts it.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/service"
)

func main() {
	var cfg allinone.Config
	os.Exit(service.Serve("loanflow", &cfg, func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error {
		cfg.Logger, cfg.Ops = log, ops
		return allinone.Run(ctx, cfg)
	}))
}
