package deploytest

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
)

// allowed is the least-privilege design each service user must have, publish side: what the
// service does on NATS (services/*, pkg/bus) and nothing else. Every subject of probeSubjects
// outside it must be denied by the running server. None of them has any $JS.API.STREAM.>
// subject, a named consumer creation or a consumer deletion.
var allowed = map[string][]string{
	"ingress": {
		events.TypeApplicationReceived, events.TypeApplicationFailed, events.TypeOfferClicked,
		"$KV.loan_decisions.>",
		"$JS.API.DIRECT.GET.KV_loan_decisions.$KV.loan_decisions.>",
		"$JS.API.CONSUMER.CREATE.KV_loan_decisions", "$JS.FC.KV_loan_decisions.>",
		"$JS.API.CONSUMER.INFO.LOANS.ingress-failures", "$JS.API.CONSUMER.MSG.NEXT.LOANS.ingress-failures", "$JS.ACK.LOANS.ingress-failures.>",
		"$JS.API.CONSUMER.INFO.LOANS.ingress-deadline", "$JS.API.CONSUMER.MSG.NEXT.LOANS.ingress-deadline", "$JS.ACK.LOANS.ingress-deadline.>",
	},
	"scoring": {
		events.TypeApplicationScored, events.TypeApplicationReferred, events.TypeApplicationFailed, topology.DeadLetterPrefix + "scoring",
		"$JS.API.DIRECT.GET.KV_clients.$KV.clients.>",
		"$JS.API.CONSUMER.INFO.LOANS.scoring", "$JS.API.CONSUMER.MSG.NEXT.LOANS.scoring", "$JS.ACK.LOANS.scoring.>",
	},
	"offers": {
		events.TypeDecisionMade, events.TypeApplicationFailed, topology.DeadLetterPrefix + "offers",
		"$KV.loan_decisions.>",
		"$JS.API.DIRECT.GET.KV_loan_decisions.$KV.loan_decisions.>",
		"$JS.API.CONSUMER.INFO.LOANS.offers", "$JS.API.CONSUMER.MSG.NEXT.LOANS.offers", "$JS.ACK.LOANS.offers.>",
	},
	"audit": {
		topology.SubjectAudit, "$KV.audit_checkpoints." + topology.CheckpointKey,
		"$JS.API.DIRECT.GET.AUDIT", "$JS.API.DIRECT.GET.KV_audit_checkpoints.$KV.audit_checkpoints._bound",
		"$JS.API.CONSUMER.INFO.LOANS.audit", "$JS.API.CONSUMER.MSG.NEXT.LOANS.audit", "$JS.ACK.LOANS.audit.>",
	},
	"console": {
		events.TypeUnderwritingTaken, events.TypeUnderwritingDecided, events.TypeApplicationFailed, topology.DeadLetterPrefix + "console",
		"$KV.underwriting.>",
		"$JS.API.DIRECT.GET.KV_underwriting.$KV.underwriting.>",
		"$KV.console_revocations.>",
		"$JS.API.DIRECT.GET.KV_console_revocations.$KV.console_revocations.>",
		"$JS.API.CONSUMER.CREATE.KV_underwriting", "$JS.FC.KV_underwriting.>",
		"$JS.API.DIRECT.GET.AUDIT",
		"$JS.API.CONSUMER.INFO.LOANS.console", "$JS.API.CONSUMER.MSG.NEXT.LOANS.console", "$JS.ACK.LOANS.console.>",
	},
}

// ownBucket is the bucket a service watches, where it may create (nameless, ephemeral)
// consumers.
var ownBucket = map[string]string{"ingress": topology.BucketDecisions, "console": topology.BucketUnderwriting}

// probeSubjects are the subjects every service user is tried on: every event, dead letter,
// audit record and bucket key, every read of another's data, every consumer's pull and ack,
// and every management request on every stream.
func probeSubjects() []string {
	// Every event type there is (a new one is denied to everyone until a user is given it).
	subjects := append([]string{
		"loan.other.v1", "audit.v1.s1", "deadletter.scoring", "deadletter.offers", "deadletter.ingress", "deadletter.audit", "deadletter.console",
		"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.CONSUMER.DURABLE.CREATE.LOANS.x",
		"$JS.API.STREAM.CREATE.OTHER", "$JS.API.META.LEADER.STEPDOWN", "$JS.API.ACCOUNT.PURGE.$G",
	}, events.Types...)
	buckets := []string{topology.BucketDecisions, topology.BucketClients, topology.BucketAuditCheckpoints, topology.BucketUnderwriting}
	streams := []string{topology.StreamLoans, topology.StreamAudit, topology.StreamDeadLetter}
	for _, b := range buckets {
		streams = append(streams, "KV_"+b)
		subjects = append(subjects, "$KV."+b+".k", "$KV."+b+"."+topology.CheckpointKey,
			"$JS.API.DIRECT.GET.KV_"+b+".$KV."+b+".k", "$JS.FC.KV_"+b+".x")
	}
	for _, s := range streams {
		for _, op := range []string{"STREAM.INFO", "STREAM.UPDATE", "STREAM.DELETE", "STREAM.PURGE", "STREAM.MSG.DELETE",
			"STREAM.MSG.GET", "STREAM.CREATE", "STREAM.RESTORE", "STREAM.LEADER.STEPDOWN", "STREAM.PEER.REMOVE",
			"DIRECT.GET", "STREAM.SNAPSHOT", "CONSUMER.CREATE", "CONSUMER.NAMES", "CONSUMER.LIST"} {
			subjects = append(subjects, "$JS.API."+op+"."+s)
		}
		subjects = append(subjects, "$JS.API.CONSUMER.CREATE."+s+".probe", "$JS.API.CONSUMER.CREATE."+s+".probe.x",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".probe", "$JS.API.CONSUMER.DELETE."+s+".probe", "$JS.API.CONSUMER.INFO."+s+".probe",
			"$JS.API.DIRECT.GET."+s+".x")
	}
	for _, name := range topology.ConsumerNames() {
		stream, _, _ := topology.Consumer(name, topology.DefaultRetry())
		for _, op := range []string{"CONSUMER.INFO", "CONSUMER.MSG.NEXT", "CONSUMER.DELETE", "CONSUMER.PAUSE", "CONSUMER.DURABLE.CREATE", "CONSUMER.CREATE"} {
			subjects = append(subjects, "$JS.API."+op+"."+stream+"."+name)
		}
		subjects = append(subjects, "$JS.ACK."+stream+"."+name+".1.1.1.1.0")
	}
	sort.Strings(subjects)
	return subjects
}

// matches reports whether subject matches the NATS pattern (* one token, > the rest).
func matches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

func allowedFor(service, subject string) bool {
	for _, p := range allowed[service] {
		if matches(p, subject) {
			return true
		}
	}
	return false
}

// TestServiceUsersAreDeniedWhatIsNotTheirs tries, for every service's credentials, every
// probe subject outside its design (publish elsewhere, other buckets, another's consumer,
// consumer creation, stream create/update/delete/purge, AUDIT delete and purge among them),
// and subscriptions to other inboxes and to the data subjects: every one must be denied.
func TestServiceUsersAreDeniedWhatIsNotTheirs(t *testing.T) {
	c := startCluster(t)
	c.provision(t)
	_, admin := c.connect(t, "admin", nil)
	ctx := context.Background()
	checkReplicas(t, admin, 3)
	// Consumers no service may delete: a bucket watcher's and one on AUDIT (made by the admin).
	bucketStream := "KV_" + topology.BucketUnderwriting
	watcher, auditCons := "watcher-probe", "audit-probe"
	for stream, name := range map[string]string{bucketStream: watcher, topology.StreamAudit: auditCons} {
		if _, err := admin.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckNonePolicy}); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range []string{"ingress", "scoring", "offers", "audit", "console"} {
		t.Run(svc, func(t *testing.T) {
			v := &violations{}
			nc, js := c.connect(t, svc, v)
			var denied []string
			for _, subj := range probeSubjects() {
				if allowedFor(svc, subj) {
					continue
				}
				denied = append(denied, "publish "+subj)
				if err := nc.Publish(subj, []byte("{}")); err != nil {
					t.Fatalf("publish %s: %v", subj, err)
				}
			}
			for _, subj := range []string{"_INBOX.>", "_INBOX_admin.>", ">", "loan.>", "audit.v1.>", "$KV.>", "deadletter.>", "$JS.API.>"} {
				denied = append(denied, "subscription "+subj)
				if _, err := nc.SubscribeSync(subj); err != nil {
					t.Fatalf("subscribe %s: %v", subj, err)
				}
			}
			for _, other := range users {
				if other != svc {
					denied = append(denied, "subscription _INBOX_"+other+".>")
					if _, err := nc.SubscribeSync("_INBOX_" + other + ".>"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "every violation reported", func() bool {
				for _, d := range denied {
					if !v.has(d) {
						return false
					}
				}
				return true
			}, func() string { return missing(denied, v) })

			// The same through the JetStream API, as a compromised service would try it.
			short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }
			try := func(what string, f func(context.Context) error) {
				t.Helper()
				c, cancel := short()
				defer cancel()
				if err := f(c); err == nil {
					t.Errorf("%s succeeded", what)
				}
			}
			try("DeleteStream AUDIT", func(c context.Context) error { return js.DeleteStream(c, topology.StreamAudit) })
			try("purge AUDIT", func(c context.Context) error {
				_, err := nc.RequestWithContext(c, "$JS.API.STREAM.PURGE."+topology.StreamAudit, nil)
				return err
			})
			try("STREAM.INFO LOANS", func(c context.Context) error { _, err := js.Stream(c, topology.StreamLoans); return err })
			try("STREAM.MSG.GET on the decisions bucket", func(c context.Context) error {
				_, err := nc.RequestWithContext(c, "$JS.API.STREAM.MSG.GET.KV_"+topology.BucketDecisions, []byte(`{"seq":1}`))
				return err
			})
			// A consumer on LOANS reads every pipeline event; on AUDIT, every record; on a
			// bucket, every key. None may be created durable, by name or nameless.
			for _, stream := range []string{topology.StreamLoans, topology.StreamAudit, topology.StreamDeadLetter, "KV_" + topology.BucketDecisions, "KV_" + topology.BucketUnderwriting} {
				try("durable consumer on "+stream, func(c context.Context) error {
					_, err := js.CreateConsumer(c, stream, jetstream.ConsumerConfig{Durable: "steal-" + svc})
					return err
				})
				try("nameless durable consumer on "+stream, func(c context.Context) error {
					return apiRequest(c, nc, "$JS.API.CONSUMER.CREATE."+stream,
						`{"stream_name":"`+stream+`","config":{"durable_name":"steal-`+svc+`","deliver_policy":"all","ack_policy":"explicit"}}`)
				})
				if ownBucket[svc] == "" || stream != "KV_"+ownBucket[svc] {
					try("ephemeral consumer on "+stream, func(c context.Context) error {
						return apiRequest(c, nc, "$JS.API.CONSUMER.CREATE."+stream,
							`{"stream_name":"`+stream+`","config":{"deliver_policy":"all","ack_policy":"none","deliver_subject":"_INBOX_`+svc+`.steal"}}`)
					})
				}
			}
			try("CreateStream", func(c context.Context) error {
				_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "OTHER_" + svc, Subjects: []string{"other." + svc}})
				return err
			})
			other := topology.ConsumerScoring
			if svc == "scoring" {
				other = topology.ConsumerOffers
			}
			// Pulling another's consumer: the request is refused, nothing is delivered.
			try("pull from "+other, func(c context.Context) error {
				_, err := nc.RequestWithContext(c, "$JS.API.CONSUMER.MSG.NEXT.LOANS."+other, []byte(`{"batch":1,"no_wait":true}`))
				return err
			})
			// Deleting a consumer: another service's, its own, and a bucket watcher's.
			try("delete "+other, func(c context.Context) error { return js.DeleteConsumer(c, topology.StreamLoans, other) })
			try("delete a watcher on "+bucketStream, func(c context.Context) error {
				return js.DeleteConsumer(c, bucketStream, watcher)
			})
			try("delete a consumer on AUDIT", func(c context.Context) error { return js.DeleteConsumer(c, topology.StreamAudit, auditCons) })
		})
	}
	// Nothing was changed by the attempts.
	for _, s := range []string{topology.StreamLoans, topology.StreamAudit, topology.StreamDeadLetter} {
		if _, err := admin.Stream(ctx, s); err != nil {
			t.Errorf("stream %s after the attempts: %v", s, err)
		}
	}
	for _, name := range topology.ConsumerNames() {
		stream, _, _ := topology.Consumer(name, topology.DefaultRetry())
		if _, err := admin.Consumer(ctx, stream, name); err != nil {
			t.Errorf("consumer %s after the attempts: %v", name, err)
		}
	}
	for stream, name := range map[string]string{bucketStream: watcher, topology.StreamAudit: auditCons} {
		if _, err := admin.Consumer(ctx, stream, name); err != nil {
			t.Errorf("consumer %s on %s after the attempts: %v", name, stream, err)
		}
	}
	// No consumer was created on LOANS, AUDIT or DEADLETTER beyond the declared ones and the probe.
	for _, stream := range []string{topology.StreamLoans, topology.StreamAudit, topology.StreamDeadLetter} {
		st, err := admin.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		for n := range st.ConsumerNames(ctx).Name() {
			if strings.HasPrefix(n, "steal") || (stream != topology.StreamLoans && n != auditCons) {
				t.Errorf("consumer %s on %s was created", n, stream)
			}
		}
	}
	names := admin.StreamNames(ctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, "OTHER") {
			t.Errorf("stream %s was created", n)
		}
	}
}

// TestLoginNeedsPasswordAndTLS checks that a wrong password and a connection without TLS are
// refused.
func TestLoginNeedsPasswordAndTLS(t *testing.T) {
	c := startCluster(t)
	s := c.settings("ingress")
	s.Password = "wrong"
	opts, _ := s.Options()
	if nc, err := nats.Connect(c.urls[0], opts...); err == nil {
		nc.Close()
		t.Error("wrong password accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("wrong password: %v, want an authorization error", err)
	}
	plain := strings.Replace(c.urls[0], "tls://", "nats://", 1)
	if nc, err := nats.Connect(plain, nats.UserInfo("ingress", c.passwords["ingress"])); err == nil {
		nc.Close()
		t.Error("connection without TLS accepted")
	}
}

// apiRequest sends a JetStream API request and returns its error: no answer (denied), or the
// server's refusal.
func apiRequest(ctx context.Context, nc *nats.Conn, subject, body string) error {
	m, err := nc.RequestWithContext(ctx, subject, []byte(body))
	if err != nil {
		return err
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	return nil
}

// checkReplicas checks that provisioning made every stream and bucket with replicas
// replicas.
func checkReplicas(t *testing.T, admin jetstream.JetStream, replicas int) {
	t.Helper()
	ctx := context.Background()
	streams := []string{topology.StreamLoans, topology.StreamAudit, topology.StreamDeadLetter}
	for _, b := range []string{topology.BucketDecisions, topology.BucketClients, topology.BucketAuditCheckpoints, topology.BucketUnderwriting} {
		streams = append(streams, "KV_"+b)
	}
	for _, name := range streams {
		s, err := admin.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		if got := s.CachedInfo().Config.Replicas; got != replicas {
			t.Errorf("stream %s: %d replicas, want %d", name, got, replicas)
		}
	}
	for _, name := range topology.ConsumerNames() {
		stream, _, _ := topology.Consumer(name, topology.DefaultRetry())
		c, err := admin.Consumer(ctx, stream, name)
		if err != nil {
			t.Errorf("consumer %s: %v", name, err)
			continue
		}
		// A consumer's 0 replicas means its stream's.
		if got := c.CachedInfo().Config.Replicas; got != 0 && got != replicas {
			t.Errorf("consumer %s: %d replicas, want %d", name, got, replicas)
		}
	}
}

func missing(want []string, v *violations) string {
	var out []string
	for _, d := range want {
		if !v.has(d) {
			out = append(out, d)
		}
	}
	return "not denied: " + strings.Join(out, ", ")
}

// waitUntil polls cond for up to 10 seconds, failing with why() when it never holds.
func waitUntil(t *testing.T, what string, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, why())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
