package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsNode is one server of the three-node cluster.
type natsNode struct {
	name                        string
	port, clusterPort, httpPort int
	conf                        string
	proc                        *proc
}

func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *natsNode) healthURL(jsEnabledOnly bool) string {
	u := "http://127.0.0.1:" + strconv.Itoa(n.httpPort) + "/healthz"
	if jsEnabledOnly {
		u += "?js-enabled-only=true"
	}
	return u
}

// cluster is three nats-server processes routed to each other, JetStream on each.
type cluster struct {
	h     *harness
	nodes []*natsNode
}

// freePorts returns n distinct free loopback ports: each is listened on, then released.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startCluster writes the three configurations, starts the servers and waits until each has
// JetStream up and the cluster has a JetStream meta leader.
func startCluster(h *harness) (*cluster, error) {
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	c := &cluster{h: h}
	for i := range 3 {
		c.nodes = append(c.nodes, &natsNode{
			name: fmt.Sprintf("n%d", i+1), port: ports[3*i], clusterPort: ports[3*i+1], httpPort: ports[3*i+2],
		})
	}
	for _, n := range c.nodes {
		var routes []string
		for _, o := range c.nodes {
			if o != n {
				routes = append(routes, strconv.Quote("nats-route://127.0.0.1:"+strconv.Itoa(o.clusterPort)))
			}
		}
		store := filepath.Join(h.dir, n.name+"-store")
		conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
jetstream {
  store_dir: %s
  sync_interval: always
}
cluster {
  name: loanflow-chaos
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, n.name, n.port, n.httpPort, strconv.Quote(store), n.clusterPort, strings.Join(routes, ", "))
		n.conf = filepath.Join(h.dir, n.name+".conf")
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := c.waitHealthy(n, true, 30*time.Second); err != nil {
			return nil, err
		}
	}
	nc, js, err := c.connect("chaos-setup")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	err = waitFor(30*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("no JetStream meta leader: %w", err)
	}
	return c, nil
}

// start (re)starts a node's server from its configuration; its store is kept.
func (c *cluster) start(n *natsNode) error {
	p, err := c.h.start(n.name, "nats-server", childEnv(), "-c", n.conf)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// urls is the cluster's client URLs, comma-separated, as NATS_URL takes them.
func (c *cluster) urls() string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, n.url())
	}
	return strings.Join(us, ",")
}

// connect opens a connection to the cluster that reconnects for as long as it is open.
func (c *cluster) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(c.urls(), nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the cluster: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// waitHealthy polls a node's monitoring /healthz until it answers 200: with jsEnabledOnly, once
// JetStream is enabled; without, once every stream and consumer it holds is current.
func (c *cluster) waitHealthy(n *natsNode, jsEnabledOnly bool, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	err := waitFor(timeout, 100*time.Millisecond, func() error {
		if n.proc.exited() {
			return errStop{fmt.Errorf("%s exited: %v", n.name, n.proc.waitErr)}
		}
		return httpGetOK(client, n.healthURL(jsEnabledOnly))
	})
	if err != nil {
		return fmt.Errorf("%s not healthy: %w", n.name, err)
	}
	return nil
}

// httpGetOK returns nil when url answers 200.
func httpGetOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := make([]byte, 512)
	k, _ := resp.Body.Read(body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body[:k])))
	}
	return nil
}

// errStop ends waitFor at once with its error.
type errStop struct{ error }

func (e errStop) Unwrap() error { return e.error }

// waitFor calls cond every interval until it returns nil, returns an errStop, or timeout
// passes; it returns cond's last error then.
func waitFor(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return stop.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}
