// Command ingress serves Yandex's loan_approval endpoint against NATS_URL.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/ingress"
)

func main() {
	var cfg ingress.Config
	os.Exit(service.Serve("ingress", &cfg, func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error {
		cfg.Logger, cfg.Ops = log, ops
		return ingress.Run(ctx, cfg)
	}))
}
