// Command devsecrets makes everything docker-compose.yml needs that must never be committed:
// the cluster's TLS material (a CA, the server certificate, a client certificate) in
// deploy/nats/tls, and a .env file with a random password for each NATS user, the phone-hash
// key, a bearer token, the audit signing key, the console's session key and the
// proposal links' signing key. It refuses to overwrite an existing .env.
//
//	go run ./deploy/cmd/devsecrets [-tls deploy/nats/tls] [-env .env]
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/loanflow/loanflow/deploy/cmd/devpki"
)

// Users are the NATS users of deploy/nats/users.conf; each gets NATS_<USER>_PASSWORD.
var Users = []string{"admin", "ingress", "scoring", "offers", "audit", "console"}

func main() {
	tlsDir := flag.String("tls", "deploy/nats/tls", "directory for the TLS material")
	envFile := flag.String("env", ".env", "environment file docker compose reads")
	flag.Parse()
	if err := run(*tlsDir, *envFile); err != nil {
		fmt.Fprintln(os.Stderr, "devsecrets:", err)
		os.Exit(1)
	}
}

func run(tlsDir, envFile string) error {
	if err := devpki.Write(tlsDir, devpki.DefaultHosts, 365*24*time.Hour); err != nil {
		return err
	}
	env, err := Env()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(envFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		fmt.Fprintf(os.Stderr, "devsecrets: %s exists, kept as it is (certificates renewed in %s)\n", envFile, tlsDir)
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(env); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Env returns the .env lines: the secrets docker-compose.yml interpolates.
func Env() (string, error) {
	var b strings.Builder
	b.WriteString("# Made by deploy/cmd/devsecrets for docker compose; never commit it.\n")
	for _, u := range Users {
		p, err := random(24)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "NATS_%s_PASSWORD=%s\n", strings.ToUpper(u), hex.EncodeToString(p))
	}
	phone, err := random(32)
	if err != nil {
		return "", err
	}
	token, err := random(32)
	if err != nil {
		return "", err
	}
	seed, err := random(ed25519.SeedSize)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "LOANFLOW_PHONE_KEY=%s\n", hex.EncodeToString(phone))
	fmt.Fprintf(&b, "LOANFLOW_BEARER_TOKENS=%s\n", hex.EncodeToString(token))
	fmt.Fprintf(&b, "LOANFLOW_AUDIT_SIGNING_KEY=%s\n", base64.StdEncoding.EncodeToString(seed))
	session, err := random(32)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "LOANFLOW_CONSOLE_SESSION_KEY=%s\n", hex.EncodeToString(session))
	link, err := random(32)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "LOANFLOW_LINK_KEYS=%s\n", hex.EncodeToString(link))
	return b.String(), nil
}

func random(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}
