package deploytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/deploy/cmd/devpki"
	"github.com/loanflow/loanflow/pkg/bus"
)

// users are the NATS users of deploy/nats/users.conf.
var users = []string{"admin", "ingress", "scoring", "offers", "audit", "console"}

// cluster is three nats-server nodes started in process from deploy/nats.
type cluster struct {
	urls      []string
	certs     string
	passwords map[string]string
	servers   []*server.Server
}

// url is the cluster's client URLs, comma-separated, as NATS_URL takes them.
func (c *cluster) url() string { return strings.Join(c.urls, ",") }

// startCluster starts deploy/nats/nats-{1,2,3}.conf as they are, but for what only the test
// machine can decide: the TLS material (made now, under a temporary directory, where the
// configs name /etc/nats/tls/), listen addresses (loopback, free ports), the routes (those
// ports) and the store directory. Passwords are set in the environment, as compose does.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{certs: t.TempDir(), passwords: map[string]string{}}
	if err := devpki.Write(c.certs, []string{"localhost", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		c.passwords[u] = hex.EncodeToString(b)
		t.Setenv("NATS_"+strings.ToUpper(u)+"_PASSWORD", c.passwords[u])
	}
	conf := t.TempDir()
	src, err := filepath.Glob("../nats/*.conf")
	if err != nil || len(src) == 0 {
		t.Fatalf("no configs in deploy/nats: %v", err)
	}
	for _, f := range src {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/etc/nats/tls/", c.certs+"/")
		if err := os.WriteFile(filepath.Join(conf, filepath.Base(f)), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	client, route := freePorts(t, 3), freePorts(t, 3)
	var routes []string
	for _, p := range route {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range 3 {
		opts, err := server.ProcessConfigFile(filepath.Join(conf, fmt.Sprintf("nats-%d.conf", i+1)))
		if err != nil {
			t.Fatalf("nats-%d.conf: %v", i+1, err)
		}
		checkLoadedOptions(t, i+1, opts)
		opts.Host, opts.Port = "127.0.0.1", client[i]
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", route[i]
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		opts.StoreDir = t.TempDir()
		opts.NoSigs = true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("nats-%d: %v", i+1, err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-%d not ready", i+1)
		}
		c.servers = append(c.servers, s)
		c.urls = append(c.urls, fmt.Sprintf("tls://127.0.0.1:%d", client[i]))
	}
	// JetStream answers once the meta group has a leader.
	nc, js := c.connect(t, "admin", nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jetstream not available on the cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	nc.Close()
	return c
}

// checkLoadedOptions checks what the configuration itself must say.
func checkLoadedOptions(t *testing.T, node int, o *server.Options) {
	t.Helper()
	if got, want := o.ServerName, fmt.Sprintf("nats-%d", node); got != want {
		t.Errorf("nats-%d.conf: server_name %q, want %q", node, got, want)
	}
	if !o.JetStream || !o.SyncAlways {
		t.Errorf("nats-%d.conf: jetstream %v, sync_interval always %v; want both", node, o.JetStream, o.SyncAlways)
	}
	if o.TLSConfig == nil {
		t.Errorf("nats-%d.conf: clients without TLS", node)
	}
	if o.Cluster.TLSConfig == nil || o.Cluster.TLSConfig.ClientAuth.String() != "RequireAndVerifyClientCert" {
		t.Errorf("nats-%d.conf: routes without mutual TLS", node)
	}
	if len(o.Routes) != 3 || o.Cluster.Name != "loanflow" {
		t.Errorf("nats-%d.conf: cluster %q with %d routes, want loanflow with 3", node, o.Cluster.Name, len(o.Routes))
	}
	if len(o.Users) != len(users) {
		t.Errorf("nats-%d.conf: %d users, want %d", node, len(o.Users), len(users))
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// violations collects the permission violations the server reports on one connection.
type violations struct {
	mu   sync.Mutex
	seen map[string]bool // "publish <subject>" or "subscription <subject>"
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	msg := err.Error()
	i := strings.Index(strings.ToLower(msg), "permissions violation for ")
	if i < 0 {
		return
	}
	rest := msg[i+len("permissions violation for "):]
	kind, subject, _ := strings.Cut(rest, " to ")
	subject = strings.Trim(strings.Fields(subject + " ")[0], `"'`)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]bool{}
	}
	v.seen[strings.ToLower(kind)+" "+subject] = true
}

func (v *violations) has(key string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seen[key]
}

func (v *violations) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for k := range v.seen {
		out = append(out, k)
	}
	return out
}

// settings are the bus settings a service deployed on the cluster runs with.
func (c *cluster) settings(user string) bus.Settings {
	off := false
	return bus.Settings{
		URL: c.url(), Replicas: 3, PublishTimeout: 5 * time.Second, MaxDeliver: 3,
		BackOff: []time.Duration{50 * time.Millisecond}, AckWait: 10 * time.Second,
		Concurrency: 4, ShutdownTimeout: 5 * time.Second, Provision: &off,
		User: user, Password: c.passwords[user], CA: filepath.Join(c.certs, devpki.CAFile),
		InboxPrefix: "_INBOX_" + user,
	}
}

// connect logs in as user with the settings' options; v, when set, collects violations.
func (c *cluster) connect(t *testing.T, user string, v *violations) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := c.settings(user)
	opts, err := s.Options()
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		opts = append(opts, nats.ErrorHandler(v.handler))
	}
	opts = append(opts, nats.Name("deploytest-"+user))
	nc, err := nats.Connect(s.URL, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// provision declares the topology as the admin, with the settings the services run with.
func (c *cluster) provision(t *testing.T) {
	t.Helper()
	_, js := c.connect(t, "admin", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := bus.EnsureTopology(ctx, js, c.settings("admin")); err != nil {
		t.Fatalf("provision as admin: %v", err)
	}
}
