// Command console serves the bank officers' underwriting console against NATS_URL.
//
//	console                 serve (LOANFLOW_CONSOLE_ADDR, default 127.0.0.1:8081)
//	console hash-password   read a password on standard input, print its bcrypt hash for
//	                        LOANFLOW_CONSOLE_USERS (login:role:hash)
package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/console"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hash-password" {
		os.Exit(hashPassword())
	}
	var cfg console.Config
	os.Exit(service.Serve("console", &cfg, func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error {
		cfg.Logger, cfg.Ops = log, ops
		return console.Run(ctx, cfg)
	}))
}

func hashPassword() int {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(os.Stderr, "console hash-password: give the password on standard input")
		return 2
	}
	h, err := console.HashPassword(strings.TrimRight(line, "\r\n"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "console hash-password: %v\n", err)
		return 2
	}
	fmt.Println(h)
	return 0
}
