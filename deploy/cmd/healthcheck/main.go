// Command healthcheck is the container health check of the loanflow images, which are
// distroless (no shell, no curl): it GETs the service's own admin endpoint, /readyz by default,
// on LOANFLOW_ADMIN_ADDR's port on loopback, and exits 0 on 200 and 1 otherwise.
//
//	healthcheck            # ready: NATS connected, streams, buckets and consumers in place
//	healthcheck -path /healthz
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	path := flag.String("path", "/readyz", "admin endpoint to check")
	timeout := flag.Duration("timeout", 3*time.Second, "bound on the check")
	flag.Parse()
	addr := os.Getenv("LOANFLOW_ADMIN_ADDR")
	if _, set := os.LookupEnv("LOANFLOW_ADMIN_ADDR"); !set {
		addr = "127.0.0.1:9090"
	}
	if err := check(addr, *path, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// check GETs path on the admin listener at addr, reached on loopback whatever host it binds.
func check(addr, path string, timeout time.Duration) error {
	if addr == "" {
		return fmt.Errorf("LOANFLOW_ADMIN_ADDR is empty: the admin listener is off")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("LOANFLOW_ADMIN_ADDR %q: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", path, resp.Status, body)
	}
	return nil
}
