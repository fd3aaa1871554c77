package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
)

func bindOnlySettings(url string) bus.Settings {
	s := natstest.Settings(url)
	off := false
	s.Provision = &off
	return s
}

func TestProvisionSettingDefaultsToTrue(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{"LOANFLOW_PROVISION": "true"}, true},
		{map[string]string{"LOANFLOW_PROVISION": "false"}, false},
	} {
		var s bus.Settings
		if err := env.ParseWithOptions(&s, env.Options{Environment: tc.env}); err != nil {
			t.Fatal(err)
		}
		if got := s.Provisions(); got != tc.want {
			t.Errorf("%v: Provisions() = %v, want %v", tc.env, got, tc.want)
		}
	}
	if got := (bus.Settings{}).Provisions(); !got {
		t.Error("settings built in code: Provisions() = false, want true (today's behaviour)")
	}
}

func TestOptionsRefuseTwoCredentialsOrHalfACertificate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       bus.Settings
		wantErr bool
		wantN   int
	}{
		{"none", bus.Settings{}, false, 0},
		{"user", bus.Settings{User: "ingress", Password: "p"}, false, 1},
		{"user, TLS, inbox", bus.Settings{User: "ingress", Password: "p", CA: "ca.pem", Cert: "c.pem", Key: "k.pem", InboxPrefix: "_INBOX_ingress"}, false, 4},
		{"user and creds", bus.Settings{User: "ingress", Password: "p", Creds: "x.creds"}, true, 0},
		{"cert without key", bus.Settings{Cert: "c.pem"}, true, 0},
		{"missing seed file", bus.Settings{NKeySeed: "/nonexistent/seed"}, true, 0},
	} {
		opts, err := bus.Settings.Options(tc.s)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if got := len(opts); !tc.wantErr && got != tc.wantN {
			t.Errorf("%s: %d options, want %d", tc.name, got, tc.wantN)
		}
	}
}

func TestBindOnlyDeclaresNothingAndFailsOnWhatIsMissing(t *testing.T) {
	srv := natstest.Start(t)
	s := bindOnlySettings(srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*bus.DirectTimeout)
	defer cancel()
	// Open asks nothing of the stream API; what the service then binds to is checked.
	conn, err := bus.Open(ctx, s, "test", quiet)
	if err != nil {
		t.Fatalf("Open on an empty server: %v", err)
	}
	defer conn.Close()
	if err := conn.EnsureConsumer(ctx, topology.ConsumerScoring, s.Retry()); !errors.Is(err, bus.ErrNotProvisioned) {
		t.Errorf("EnsureConsumer on an empty server: err = %v, want ErrNotProvisioned", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*bus.DirectTimeout)
	defer cancel()
	if _, err := conn.EnsureBucket(ctx, topology.ClientsBucket(conn.Topology())); !errors.Is(err, bus.ErrNotProvisioned) {
		t.Errorf("EnsureBucket on an empty server: err = %v, want ErrNotProvisioned", err)
	}
	_, js, err := bus.Connect(srv.ClientURL(), "check", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if names := streamNames(t, js); len(names) != 0 {
		t.Errorf("streams after a bind-only Open: %v, want none", names)
	}
}

func TestBindOnlyBindsToWhatTheAdminProvisioned(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	s := bindOnlySettings(srv.ClientURL())
	nc, admin, err := bus.Connect(srv.ClientURL(), "admin", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := bus.EnsureTopology(ctx, admin, s); err != nil {
		t.Fatal(err)
	}
	conn, err := bus.Open(ctx, s, "scoring", quiet)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer conn.Close()
	if err := conn.EnsureConsumer(ctx, topology.ConsumerScoring, s.Retry()); err != nil {
		t.Errorf("EnsureConsumer: %v", err)
	}
	kv, err := conn.EnsureBucket(ctx, topology.ClientsBucket(conn.Topology()))
	if err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Errorf("put through a bound bucket: %v", err)
	}
	// The handle refuses to declare anything, without asking the server.
	if _, err := conn.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other"}}); !errors.Is(err, bus.ErrNotProvisioned) {
		t.Errorf("CreateStream: err = %v, want ErrNotProvisioned", err)
	}
	if err := conn.JS.DeleteStream(ctx, topology.StreamAudit); !errors.Is(err, bus.ErrNotProvisioned) {
		t.Errorf("DeleteStream: err = %v, want ErrNotProvisioned", err)
	}
	// A consumer gone is reported, not re-created.
	if err := admin.DeleteConsumer(ctx, topology.StreamLoans, topology.ConsumerOffers); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := conn.EnsureConsumer(short, topology.ConsumerOffers, s.Retry()); !errors.Is(err, bus.ErrNotProvisioned) {
		t.Errorf("EnsureConsumer of a deleted consumer: err = %v, want ErrNotProvisioned", err)
	}
	if err := bus.EnsureConsumer(ctx, conn.JS, topology.ConsumerOffers, s.Retry()); !errors.Is(err, bus.ErrNotProvisioned) {
		t.Errorf("package EnsureConsumer on a bind-only handle: err = %v, want ErrNotProvisioned", err)
	}
	if _, err := admin.Consumer(ctx, topology.StreamLoans, topology.ConsumerOffers); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("offers consumer after bind-only calls: err = %v, want not found", err)
	}
}

func TestEnsureTopologyDeclaresEveryConsumerAndBucket(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	nc, js, err := bus.Connect(srv.ClientURL(), "admin", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := natstest.Settings(srv.ClientURL())
	if err := bus.EnsureTopology(ctx, js, s); err != nil {
		t.Fatal(err)
	}
	for _, name := range topology.ConsumerNames() {
		stream, _, _ := topology.Consumer(name, s.Retry())
		if _, err := js.Consumer(ctx, stream, name); err != nil {
			t.Errorf("consumer %s: %v", name, err)
		}
	}
	o := s.Topology()
	for _, b := range []jetstream.KeyValueConfig{topology.DecisionsBucket(o), topology.ClientsBucket(o),
		topology.AuditCheckpointsBucket(o), topology.UnderwritingBucket(o)} {
		if _, err := js.KeyValue(ctx, b.Bucket); err != nil {
			t.Errorf("bucket %s: %v", b.Bucket, err)
		}
	}
	c, err := js.Consumer(ctx, topology.StreamLoans, topology.ConsumerConsole)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.CachedInfo().Config.MaxDeliver, s.Retry().MaxDeliver+bus.ReportAttempts; got != want {
		t.Errorf("console MaxDeliver = %d, want %d (the pipeline stages' retry)", got, want)
	}
}

func streamNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var names []string
	l := js.StreamNames(context.Background())
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}
