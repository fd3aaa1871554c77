package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/deploy/cmd/devpki"
)

func TestRunWritesCertificatesAndKeepsAnExistingEnv(t *testing.T) {
	dir := t.TempDir()
	tlsDir, envFile := filepath.Join(dir, "tls"), filepath.Join(dir, ".env")
	if err := run(tlsDir, envFile); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range Users {
		if !strings.Contains(string(first), "NATS_"+strings.ToUpper(u)+"_PASSWORD=") {
			t.Errorf(".env has no password for %s", u)
		}
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, devpki.ServerCert), filepath.Join(tlsDir, devpki.ServerKey))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(tlsDir, devpki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"nats-2", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if st, err := os.Stat(filepath.Join(tlsDir, devpki.ServerKey)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("server key mode: %v %v, want 0600", st.Mode(), err)
	}
	if err := run(tlsDir, envFile); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(envFile)
	if string(second) != string(first) {
		t.Error("a second run rewrote .env")
	}
}
