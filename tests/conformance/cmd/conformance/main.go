// Command conformance checks a loan_approval partner endpoint the way Yandex Search calls it,
// before Yandex's integration health check: pure HTTP against any base URL. It prints a
// readable report, writes a JSON one with --json, and exits 1 when a scenario fails (2 on a
// usage error).
//
//	conformance --url http://127.0.0.1:8080/integrations --token "$TOKEN" [--json report.json]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/loanflow/loanflow/tests/conformance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := conformance.DefaultInputs()
	var (
		cfg      conformance.Config
		jsonFile string
		only     string
		list     bool
	)
	fs.StringVar(&cfg.BaseURL, "url", "", "base URL of the API, e.g. http://127.0.0.1:8080/integrations (required)")
	fs.StringVar(&cfg.Token, "token", os.Getenv("CONFORMANCE_TOKEN"), "bearer token (default $CONFORMANCE_TOKEN)")
	fs.DurationVar(&cfg.Deadline, "deadline", conformance.DefaultDeadline, "longest time from an application's first call to its done answer")
	fs.DurationVar(&cfg.Timeout, "timeout", conformance.DefaultTimeout, "longest time for one HTTP exchange")
	fs.IntVar(&cfg.Concurrency, "concurrency", conformance.DefaultConcurrency, "identical applications sent at once")
	fs.IntVar(&cfg.OversizeBytes, "oversize", conformance.DefaultOversize, "size in bytes of the oversized body")
	fs.BoolVar(&cfg.Strict, "strict", false, "report every skipped scenario as failed")
	fs.StringVar(&jsonFile, "json", "", "also write a machine-readable report to this file (- for stdout)")
	fs.StringVar(&only, "run", "", "comma-separated scenarios to run (default all; see --list)")
	fs.BoolVar(&list, "list", false, "list the scenarios and exit")
	fs.StringVar(&cfg.Inputs.Phone, "phone", def.Phone, "an ordinary applicant the bank makes offers to")
	fs.Float64Var(&cfg.Inputs.LoanAmount, "loan-amount", def.LoanAmount, "amount of the ordinary loan application")
	fs.IntVar(&cfg.Inputs.LoanTerm, "loan-term", def.LoanTerm, "term of the ordinary loan application, months")
	fs.StringVar(&cfg.Inputs.RejectPhone, "reject-phone", def.RejectPhone, "an applicant the bank rejects")
	fs.StringVar(&cfg.Inputs.SeveralPhone, "several-phone", def.SeveralPhone, "an applicant who gets several loan offers")
	fs.Float64Var(&cfg.Inputs.SeveralAmount, "several-amount", def.SeveralAmount, "amount of the several-offers application")
	fs.IntVar(&cfg.Inputs.SeveralTerm, "several-term", def.SeveralTerm, "term of the several-offers application, months")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if list {
		for _, s := range conformance.Scenarios() {
			fmt.Fprintf(stdout, "%-22s %s\n", s.Name, s.About)
		}
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "conformance: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.BaseURL == "" {
		fmt.Fprintln(stderr, "conformance: --url is required")
		fs.Usage()
		return 2
	}
	if cfg.Token == "" {
		fmt.Fprintln(stderr, "conformance: no --token: the 403 scenarios are skipped and every call goes without Authorization")
	}
	if only != "" {
		for _, name := range strings.Split(only, ",") {
			cfg.Scenarios = append(cfg.Scenarios, strings.TrimSpace(name))
		}
	}

	rep, err := conformance.Run(ctx, cfg)
	if err != nil && rep.Results == nil {
		fmt.Fprintf(stderr, "conformance: %v\n", err)
		return 2
	}
	if werr := rep.WriteText(stdout); werr != nil {
		fmt.Fprintf(stderr, "conformance: %v\n", werr)
		return 2
	}
	if jsonFile != "" {
		if werr := writeJSON(jsonFile, rep, stdout); werr != nil {
			fmt.Fprintf(stderr, "conformance: %v\n", werr)
			return 2
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "conformance: stopped: %v\n", err)
		return 1
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

func writeJSON(name string, rep conformance.Report, stdout io.Writer) error {
	if name == "-" {
		return rep.WriteJSON(stdout)
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
