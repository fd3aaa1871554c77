package ingress_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/ingress"
)

const cardApp = `{"search_id":"%s","product_type":"credit_card","phone_number":"9001234567"}`

func TestAllowlistRefusesOtherNetworks(t *testing.T) {
	e := start(t, 0, func(c *ingress.Config) { c.AllowCIDRs = []string{"10.0.0.0/8"} })
	r := e.post(t, token, strings.Replace(cardApp, "%s", "cidr-1", 1))
	if r.status != http.StatusForbidden || !strings.Contains(r.raw, "адреса") {
		t.Fatalf("from 127.0.0.1 with only 10/8 allowed: %d %s; want 403 naming the address", r.status, r.raw)
	}
	if ev := e.streamEvents(t); len(ev) != 0 {
		t.Fatalf("a refused request published %d events", len(ev))
	}

	ok := start(t, 0, func(c *ingress.Config) { c.AllowCIDRs = []string{"127.0.0.0/8", "::1"} })
	if r := ok.post(t, token, strings.Replace(cardApp, "%s", "cidr-2", 1)); r.status != http.StatusOK {
		t.Fatalf("from an allowed network: %d %s", r.status, r.raw)
	}
}

func TestRateLimitPerToken(t *testing.T) {
	e := start(t, 0, func(c *ingress.Config) { c.RateLimit, c.RateBurst = 0.1, 2 })
	for i := range 2 {
		if r := e.post(t, token, `{"search_id":"rl-unknown"}`); r.status != http.StatusNotFound {
			t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.raw)
		}
	}
	r := e.post(t, token, strings.Replace(cardApp, "%s", "rl-1", 1))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.body["search_id"] != "rl-1" {
		t.Fatalf("over the rate: %d Retry-After=%q %s; want 429 with Retry-After naming the search_id", r.status, r.header.Get("Retry-After"), r.raw)
	}
	if ev := e.streamEvents(t); len(ev) != 0 {
		t.Fatalf("a rationed request published %d events", len(ev))
	}
	if r := e.post(t, "old-token", `{"search_id":"rl-unknown"}`); r.status != http.StatusNotFound {
		t.Fatalf("the other token was rationed too: %d %s", r.status, r.raw)
	}
}

func TestServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	srv := natstest.StartIn(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var cfg ingress.Config
	cfg.Bus = natstest.Settings(srv.ClientURL())
	cfg.BearerTokens = []string{token}
	cfg.PhoneKey = "0123456789abcdef-test-key"
	cfg.Listener = ln
	cfg.MaxBodyBytes = 65536
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ingress.Run(ctx, cfg) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingress.Run: %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	url := "https://" + ln.Addr().String() + "/api/banking/loan_approval" // no base path: the API at the root
	var status int
	natstest.WaitFor(t, "ingress over TLS", func() bool {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(strings.Replace(cardApp, "%s", "tls-1", 1)))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status == http.StatusOK
	})
	// Plain HTTP on the TLS port gets no answer Yandex could mistake for one.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ingress test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
