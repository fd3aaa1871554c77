//go:build docker

package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/loanflow/loanflow/deploy/cmd/devpki"
)

// TestImagesEndToEnd builds the images of deploy/Dockerfile and runs the docker-compose
// topology with testcontainers-go: three nats-server nodes from deploy/nats (TLS made now),
// provisioning as the admin, ingress, scoring, offers and audit as their own users; then one
// application over HTTP to a final answer. Run with `go test -tags docker ./deploy/deploytest/`;
// without a Docker daemon it skips.
func TestImagesEndToEnd(t *testing.T) {
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root := repoRoot(t)
	vars := devsecretsEnv(t)
	certs := t.TempDir()
	if err := devpki.Write(certs, devpki.DefaultHosts, time.Hour); err != nil {
		t.Fatal(err)
	}
	net, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = net.Remove(context.Background()) })

	var natsFiles []testcontainers.ContainerFile
	confs, _ := filepath.Glob(filepath.Join(root, "deploy", "nats", "*.conf"))
	for _, f := range confs {
		natsFiles = append(natsFiles, testcontainers.ContainerFile{HostFilePath: f, ContainerFilePath: "/etc/nats/" + filepath.Base(f), FileMode: 0o644})
	}
	for _, f := range []string{devpki.CAFile, devpki.ServerCert, devpki.ServerKey} {
		natsFiles = append(natsFiles, testcontainers.ContainerFile{HostFilePath: filepath.Join(certs, f), ContainerFilePath: "/etc/nats/tls/" + f, FileMode: 0o644})
	}
	natsEnv := map[string]string{}
	for _, u := range users {
		k := "NATS_" + strings.ToUpper(u) + "_PASSWORD"
		natsEnv[k] = vars[k]
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 1; i <= 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("nats-%d", i)
			c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Started: true, ContainerRequest: testcontainers.ContainerRequest{
				Image: "nats:2.15.2-alpine", Cmd: []string{"-c", "/etc/nats/" + name + ".conf"}, Env: natsEnv, Files: natsFiles,
				Networks: []string{net.Name}, NetworkAliases: map[string][]string{net.Name: {name}},
				WaitingFor: wait.ForLog("Server is ready").WithStartupTimeout(2 * time.Minute),
			}})
			testcontainers.CleanupContainer(t, c)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	caFile := []testcontainers.ContainerFile{{HostFilePath: filepath.Join(certs, devpki.CAFile), ContainerFilePath: "/etc/loanflow/tls/ca.pem", FileMode: 0o644}}
	busEnv := func(user string, more map[string]string) map[string]string {
		e := map[string]string{
			"NATS_URL": "tls://nats-1:4222,tls://nats-2:4222,tls://nats-3:4222", "NATS_CA": "/etc/loanflow/tls/ca.pem",
			"LOANFLOW_NATS_REPLICAS": "3", "LOANFLOW_PROVISION": "false", "LOANFLOW_ADMIN_ADDR": "0.0.0.0:9090",
			"NATS_USER": user, "NATS_PASSWORD": vars["NATS_"+strings.ToUpper(user)+"_PASSWORD"], "NATS_INBOX_PREFIX": "_INBOX_" + user,
		}
		for k, v := range more {
			e[k] = v
		}
		return e
	}
	image := func(service string, env map[string]string, ports []string, waitFor wait.Strategy) testcontainers.Container {
		t.Helper()
		arg := service
		c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Started: true, ContainerRequest: testcontainers.ContainerRequest{
			FromDockerfile: testcontainers.FromDockerfile{Context: root, Dockerfile: "deploy/Dockerfile", BuildArgs: map[string]*string{"SERVICE": &arg},
				Repo: "loanflow-" + service, Tag: "deploytest", KeepImage: true},
			Env: env, Files: caFile, ExposedPorts: ports, Networks: []string{net.Name}, NetworkAliases: map[string][]string{net.Name: {service}},
			WaitingFor: waitFor,
		}})
		testcontainers.CleanupContainer(t, c)
		if err != nil {
			t.Fatalf("%s: %v", service, err)
		}
		return c
	}
	healthy := wait.ForExec([]string{"/healthcheck"}).WithStartupTimeout(3 * time.Minute).WithPollInterval(time.Second)
	image("provision", busEnv("admin", nil), nil, wait.ForExit().WithExitTimeout(3*time.Minute))
	image("scoring", busEnv("scoring", nil), nil, healthy)
	image("offers", busEnv("offers", map[string]string{"LOANFLOW_LINK_KEYS": vars["LOANFLOW_LINK_KEYS"], "LOANFLOW_PUBLIC_URL": "http://localhost:8080"}), nil, healthy)
	image("audit", busEnv("audit", map[string]string{"LOANFLOW_PHONE_KEY": vars["LOANFLOW_PHONE_KEY"], "LOANFLOW_AUDIT_SIGNING_KEY": vars["LOANFLOW_AUDIT_SIGNING_KEY"]}), nil, healthy)
	ing := image("ingress", busEnv("ingress", map[string]string{
		"LOANFLOW_BEARER_TOKENS": vars["LOANFLOW_BEARER_TOKENS"], "LOANFLOW_PHONE_KEY": vars["LOANFLOW_PHONE_KEY"],
		"LOANFLOW_LINK_KEYS": vars["LOANFLOW_LINK_KEYS"], "LOANFLOW_SYNC_BUDGET": "10s",
	}), []string{"8080/tcp"}, healthy)

	base, err := ing.PortEndpoint(ctx, "8080/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"search_id":"3f1c9a62-5b7e-4d2a-9c1e-0b8f6a4d2e71","product_type":"loan","phone_number":"9001234567","amount":200000,"term":24}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/integrations/api/banking/loan_approval", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+vars["LOANFLOW_BEARER_TOKENS"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	var got struct{ Status, Decision string }
	if err := json.Unmarshal(answer, &got); err != nil || resp.StatusCode != http.StatusOK || got.Status != "done" || got.Decision != "has_approve" {
		t.Fatalf("answer %d %s, want 200 done has_approve", resp.StatusCode, answer)
	}
	if os.Getenv("DEPLOYTEST_LOG") != "" {
		t.Logf("answer: %s", answer)
	}
}
