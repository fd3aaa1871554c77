package deploytest

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/loanflow/loanflow/deploy/cmd/devpki"
	"github.com/loanflow/loanflow/pkg/bus"
)

// repoRoot is the repository's root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// devsecretsEnv runs deploy/cmd/devsecrets as an operator would and returns the .env it wrote:
// the compose file must need nothing else.
func devsecretsEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./devsecrets", "-tls", filepath.Join(dir, "tls"), "-env", filepath.Join(dir, ".env"))
	cmd.Dir = filepath.Join(repoRoot(t), "deploy", "cmd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("devsecrets: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			vars[k] = v
		}
	}
	return vars
}

func loadCompose(t *testing.T, environment map[string]string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: environment,
	}, func(o *loader.Options) { o.SetProjectName("loanflow", true) })
}

// envOf returns a service's environment with every value set.
func envOf(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("%s: %s has no value", s.Name, k)
			continue
		}
		out[k] = *v
	}
	return out
}

func TestComposeSetsWhatEachServiceReads(t *testing.T) {
	vars := devsecretsEnv(t)
	p, err := loadCompose(t, vars)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	root := repoRoot(t)
	nodes := []string{"nats-1", "nats-2", "nats-3"}
	replicas := map[string]int{}
	var provision map[string]string
	busOf := map[string]bus.Settings{}
	for name, s := range p.Services {
		if slices.Contains(nodes, name) {
			continue
		}
		if s.Build == nil || s.Build.Args["SERVICE"] == nil {
			t.Errorf("%s: not built from deploy/Dockerfile with a SERVICE", name)
			continue
		}
		kind := *s.Build.Args["SERVICE"]
		if got := filepath.Join(s.Build.Context, s.Build.Dockerfile); got != filepath.Join(root, "deploy", "Dockerfile") {
			t.Errorf("%s: built from %s, want deploy/Dockerfile", name, got)
		}
		n := 1
		if s.Deploy != nil && s.Deploy.Replicas != nil {
			n = *s.Deploy.Replicas
		}
		replicas[kind] += n
		e := envOf(t, s)
		var bs bus.Settings
		if err := env.ParseWithOptions(&bs, env.Options{Environment: e}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		busOf[name] = bs
		if kind == "provision" {
			provision = e
			if bs.User != "admin" {
				t.Errorf("provision logs in as %q, want admin", bs.User)
			}
			checkPasswordOfNodes(t, p, nodes, name, bs)
			checkCAMounted(t, root, s, bs.CA)
			continue
		}
		t.Run(name, func(t *testing.T) { checkService(t, p, root, name, kind, s, e, bs, nodes) })
	}
	if replicas["ingress"] != 2 || replicas["scoring"] != 2 || replicas["offers"] != 1 || replicas["audit"] != 1 || replicas["console"] != 1 || replicas["provision"] != 1 {
		t.Errorf("replicas %v, want ingress 2, scoring 2, offers 1, audit 1, console 1, provision 1", replicas)
	}
	if provision == nil {
		t.Fatal("no provisioning container")
	}
	// Consumers and buckets are declared from the provisioner's settings: the services must
	// read the same, or their retries and the consumers' limits disagree.
	pb := busOf["provision"]
	for name, bs := range busOf {
		if !reflect.DeepEqual(bs.Retry(), pb.Retry()) || bs.Topology() != pb.Topology() || bs.URL != pb.URL {
			t.Errorf("%s: retry %+v topology %+v url %s; provisioned with %+v %+v %s", name, bs.Retry(), bs.Topology(), bs.URL, pb.Retry(), pb.Topology(), pb.URL)
		}
	}
	if pb.Topology().Replicas != 3 {
		t.Errorf("provisioned with %d replicas, want 3", pb.Topology().Replicas)
	}
	checkNodes(t, p, root, nodes)
	checkPorts(t, p)

	// A secret missing from the environment stops compose, naming it.
	delete(vars, "NATS_SCORING_PASSWORD")
	if _, err := loadCompose(t, vars); err == nil || !strings.Contains(err.Error(), "NATS_SCORING_PASSWORD") {
		t.Errorf("without NATS_SCORING_PASSWORD: %v, want an error naming it", err)
	}
}

func checkService(t *testing.T, p *types.Project, root, name, kind string, s types.ServiceConfig, e map[string]string, bs bus.Settings, nodes []string) {
	reads, required := readsOf(t, kind)
	for k := range e {
		if !reads[k] && !readByProcess(k) {
			t.Errorf("sets %s, which %s does not read", k, kind)
		}
	}
	for _, k := range required {
		if e[k] == "" {
			t.Errorf("%s must be set: %s reads it", k, kind)
		}
	}
	if typ, ok := serviceConfigs[kind]; ok {
		cfg := reflect.New(typ).Interface()
		if err := env.ParseWithOptions(cfg, env.Options{Environment: e}); err != nil {
			t.Errorf("%s's Config does not parse this environment: %v", kind, err)
		}
	}
	if bs.Provisions() || bs.User != kind || bs.InboxPrefix != "_INBOX_"+kind || bs.Topology().Replicas != 3 {
		t.Errorf("provision %v, user %q, inbox %q, replicas %d; want false, %q, _INBOX_%s, 3", bs.Provisions(), bs.User, bs.InboxPrefix, bs.Topology().Replicas, kind, kind)
	}
	checkPasswordOfNodes(t, p, nodes, name, bs)
	checkCAMounted(t, root, s, bs.CA)
	for _, u := range strings.Split(bs.URL, ",") {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "tls" || !slices.Contains(nodes, pu.Hostname()) || pu.Port() != "4222" {
			t.Errorf("NATS_URL entry %q: want tls://<node>:4222", u)
		}
	}
	if s.HealthCheck == nil || !slices.Equal([]string(s.HealthCheck.Test), []string{"CMD", "/healthcheck"}) {
		t.Errorf("health check %v, want [CMD /healthcheck]", s.HealthCheck)
	}
	if _, port, err := net.SplitHostPort(e["LOANFLOW_ADMIN_ADDR"]); err != nil || port == "" {
		t.Errorf("LOANFLOW_ADMIN_ADDR %q: the health check needs its port", e["LOANFLOW_ADMIN_ADDR"])
	}
	if d, ok := s.DependsOn["provision"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("depends on %v, want provision completed successfully", s.DependsOn)
	}
	listen := map[string]string{"ingress": "LOANFLOW_HTTP_ADDR", "console": "LOANFLOW_CONSOLE_ADDR"}[kind]
	for _, port := range s.Ports {
		_, want, _ := net.SplitHostPort(e[listen])
		if listen == "" || strconv.Itoa(int(port.Target)) != want {
			t.Errorf("publishes container port %d, but %s listens on %q (%s)", port.Target, kind, e[listen], listen)
		}
	}
}

// checkPasswordOfNodes: a service's password is the one every node reads for its user.
func checkPasswordOfNodes(t *testing.T, p *types.Project, nodes []string, name string, bs bus.Settings) {
	t.Helper()
	for _, n := range nodes {
		v := p.Services[n].Environment["NATS_"+strings.ToUpper(bs.User)+"_PASSWORD"]
		if v == nil || *v == "" || *v != bs.Password {
			t.Errorf("%s: NATS_PASSWORD is not %s's NATS_%s_PASSWORD", name, n, strings.ToUpper(bs.User))
		}
	}
}

// checkCAMounted: the CA file a service reads is mounted from the file devsecrets makes.
func checkCAMounted(t *testing.T, root string, s types.ServiceConfig, ca string) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == ca {
			if rel, _ := filepath.Rel(root, v.Source); rel != filepath.Join("deploy", "nats", "tls", devpki.CAFile) || !v.ReadOnly {
				t.Errorf("%s: %s mounted from %s (read-only %v), want deploy/nats/tls/%s read-only", s.Name, ca, rel, v.ReadOnly, devpki.CAFile)
			}
			return
		}
	}
	t.Errorf("%s: NATS_CA %q is not mounted", s.Name, ca)
}

// checkNodes: each node runs its own config file of deploy/nats, which exists, with every
// password users.conf needs, and names only TLS files devsecrets makes.
func checkNodes(t *testing.T, p *types.Project, root string, nodes []string) {
	t.Helper()
	for _, n := range nodes {
		s, ok := p.Services[n]
		if !ok {
			t.Errorf("no service %s", n)
			continue
		}
		if !strings.HasPrefix(s.Image, "nats:2.15") {
			t.Errorf("%s: image %s, want nats:2.15 (the server version the tests pin)", n, s.Image)
		}
		if want := []string{"-c", "/etc/nats/" + n + ".conf"}; !slices.Equal([]string(s.Command), want) {
			t.Errorf("%s: command %v, want %v", n, s.Command, want)
		}
		mounted := map[string]string{}
		for _, v := range s.Volumes {
			mounted[v.Target] = v.Source
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: mounts %s, which does not exist: %v", n, v.Source, err)
				}
			}
		}
		if rel, _ := filepath.Rel(root, mounted["/etc/nats"]); rel != filepath.Join("deploy", "nats") {
			t.Errorf("%s: /etc/nats is %q, want deploy/nats", n, mounted["/etc/nats"])
		}
		if _, err := os.Stat(filepath.Join(root, "deploy", "nats", n+".conf")); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if mounted["/data"] == "" {
			t.Errorf("%s: no volume for the JetStream store /data", n)
		}
		for _, u := range users {
			if v := s.Environment["NATS_"+strings.ToUpper(u)+"_PASSWORD"]; v == nil || *v == "" {
				t.Errorf("%s: NATS_%s_PASSWORD unset: users.conf reads it", n, strings.ToUpper(u))
			}
		}
		if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "8222/healthz") {
			t.Errorf("%s: health check %v, want the server's /healthz", n, s.HealthCheck)
		}
	}
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "nats", "server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	made := []string{devpki.CAFile, devpki.ServerCert, devpki.ServerKey}
	refs := regexp.MustCompile(`/etc/nats/tls/([^"\s]+)`).FindAllStringSubmatch(string(conf), -1)
	if len(refs) == 0 {
		t.Error("server.conf names no TLS file")
	}
	for _, m := range refs {
		if !slices.Contains(made, m[1]) {
			t.Errorf("server.conf names /etc/nats/tls/%s, which devsecrets does not make", m[1])
		}
	}
	if !strings.Contains(string(conf), "sync_interval: always") {
		t.Error("server.conf: JetStream without sync_interval: always")
	}
}

// checkPorts: no two containers publish the same host port.
func checkPorts(t *testing.T, p *types.Project) {
	t.Helper()
	owner := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			if s.Deploy != nil && s.Deploy.Replicas != nil && *s.Deploy.Replicas > 1 {
				t.Errorf("%s: %d replicas cannot share host port %s", name, *s.Deploy.Replicas, port.Published)
			}
			if other, ok := owner[port.Published]; ok {
				t.Errorf("host port %s published by %s and %s", port.Published, other, name)
			}
			owner[port.Published] = name
		}
	}
	if len(owner) == 0 {
		t.Error("nothing published: ingress must be reachable")
	}
}

// TestDockerfileBuildsEverySERVICE checks that every SERVICE compose builds is one the
// Dockerfile knows, and that the package it builds is a main package in its module.
func TestDockerfileBuildsEverySERVICE(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	arms := map[string][2]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+([a-z|]+)\) mod=([^;]+); pkg=([^ ;]+) ;;`).FindAllStringSubmatch(string(b), -1) {
		for _, svc := range strings.Split(m[1], "|") {
			arms[svc] = [2]string{strings.ReplaceAll(m[2], "$SERVICE", svc), strings.ReplaceAll(m[3], "$SERVICE", svc)}
		}
	}
	for _, want := range []string{"ingress", "scoring", "offers", "audit", "console", "loanflow", "provision"} {
		arm, ok := arms[want]
		if !ok {
			t.Errorf("Dockerfile builds no SERVICE=%s", want)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, arm[0], "go.mod")); err != nil {
			t.Errorf("SERVICE=%s: module %s: %v", want, arm[0], err)
		}
		if _, err := os.Stat(filepath.Join(root, arm[0], arm[1], "main.go")); err != nil {
			t.Errorf("SERVICE=%s: no main package %s in %s: %v", want, arm[1], arm[0], err)
		}
	}
	for _, must := range []string{"distroless/static", "nonroot", "CGO_ENABLED=0", "GOWORK=off", "/healthcheck"} {
		if !strings.Contains(string(b), must) {
			t.Errorf("Dockerfile: no %s", must)
		}
	}
}
