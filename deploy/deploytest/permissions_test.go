package deploytest

import (
	"context"
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
// outside it must be denied by the running server.
var allowed = map[string][]string{
	"ingress": {
		events.TypeApplicationReceived, events.TypeApplicationFailed, events.TypeOfferClicked,
		"$KV.loan_decisions.>",
		"$JS.API.STREAM.INFO.LOANS", "$JS.API.STREAM.INFO.KV_loan_decisions",
		"$JS.API.DIRECT.GET.KV_loan_decisions.$KV.loan_decisions.>", "$JS.API.STREAM.MSG.GET.KV_loan_decisions",
		"$JS.API.CONSUMER.CREATE.KV_loan_decisions.>", "$JS.API.CONSUMER.DELETE.KV_loan_decisions.*", "$JS.FC.KV_loan_decisions.>",
		"$JS.API.CONSUMER.INFO.LOANS.ingress-failures", "$JS.API.CONSUMER.MSG.NEXT.LOANS.ingress-failures", "$JS.ACK.LOANS.ingress-failures.>",
		"$JS.API.CONSUMER.INFO.LOANS.ingress-deadline", "$JS.API.CONSUMER.MSG.NEXT.LOANS.ingress-deadline", "$JS.ACK.LOANS.ingress-deadline.>",
	},
	"scoring": {
		events.TypeApplicationScored, events.TypeApplicationReferred, events.TypeApplicationFailed, topology.DeadLetterPrefix + "scoring",
		"$JS.API.STREAM.INFO.LOANS", "$JS.API.STREAM.INFO.KV_clients", "$JS.API.DIRECT.GET.KV_clients.$KV.clients.>",
		"$JS.API.CONSUMER.INFO.LOANS.scoring", "$JS.API.CONSUMER.MSG.NEXT.LOANS.scoring", "$JS.ACK.LOANS.scoring.>",
	},
	"offers": {
		events.TypeDecisionMade, events.TypeApplicationFailed, topology.DeadLetterPrefix + "offers",
		"$KV.loan_decisions.>",
		"$JS.API.STREAM.INFO.LOANS", "$JS.API.STREAM.INFO.KV_loan_decisions", "$JS.API.DIRECT.GET.KV_loan_decisions.$KV.loan_decisions.>",
		"$JS.API.CONSUMER.INFO.LOANS.offers", "$JS.API.CONSUMER.MSG.NEXT.LOANS.offers", "$JS.ACK.LOANS.offers.>",
	},
	"audit": {
		topology.SubjectAudit, "$KV.audit_checkpoints." + topology.CheckpointKey,
		"$JS.API.STREAM.INFO.LOANS", "$JS.API.STREAM.INFO.AUDIT", "$JS.API.DIRECT.GET.AUDIT", "$JS.API.STREAM.INFO.KV_audit_checkpoints",
		"$JS.API.CONSUMER.INFO.LOANS.audit", "$JS.API.CONSUMER.MSG.NEXT.LOANS.audit", "$JS.ACK.LOANS.audit.>",
	},
	"console": {
		events.TypeUnderwritingTaken, events.TypeUnderwritingDecided, events.TypeApplicationFailed, topology.DeadLetterPrefix + "console",
		"$KV.underwriting.>",
		"$JS.API.STREAM.INFO.LOANS", "$JS.API.STREAM.INFO.KV_underwriting", "$JS.API.DIRECT.GET.KV_underwriting.$KV.underwriting.>",
		"$JS.API.CONSUMER.CREATE.KV_underwriting.>", "$JS.API.CONSUMER.DELETE.KV_underwriting.*", "$JS.FC.KV_underwriting.>",
		"$JS.API.STREAM.INFO.AUDIT", "$JS.API.CONSUMER.CREATE.AUDIT.>", "$JS.API.CONSUMER.MSG.NEXT.AUDIT.*", "$JS.API.CONSUMER.DELETE.AUDIT.*",
		"$JS.API.CONSUMER.INFO.LOANS.console", "$JS.API.CONSUMER.MSG.NEXT.LOANS.console", "$JS.ACK.LOANS.console.>",
	},
}

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
			"STREAM.MSG.GET", "DIRECT.GET", "STREAM.SNAPSHOT", "CONSUMER.CREATE", "CONSUMER.NAMES", "CONSUMER.LIST"} {
			subjects = append(subjects, "$JS.API."+op+"."+s)
		}
		subjects = append(subjects, "$JS.API.CONSUMER.CREATE."+s+".probe", "$JS.API.CONSUMER.CREATE."+s+".probe.x",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".probe", "$JS.API.CONSUMER.DELETE."+s+".probe")
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
			c1, cancel := short()
			if err := js.DeleteStream(c1, topology.StreamAudit); err == nil {
				t.Error("DeleteStream AUDIT succeeded")
			}
			cancel()
			// A consumer on LOANS reads every pipeline event; on AUDIT, every record. console
			// may create (ordered) consumers on AUDIT for its timelines, and permissions cannot
			// tell an ordered from a durable one by subject: it is tried on DEADLETTER instead.
			others := []string{topology.StreamLoans, topology.StreamAudit}
			if svc == "console" {
				others[1] = topology.StreamDeadLetter
			}
			for _, stream := range others {
				c2, cancel := short()
				if _, err := js.CreateConsumer(c2, stream, jetstream.ConsumerConfig{Durable: "steal-" + svc}); err == nil {
					t.Errorf("durable consumer on %s created", stream)
				}
				cancel()
			}
			c3, cancel := short()
			if _, err := js.CreateStream(c3, jetstream.StreamConfig{Name: "OTHER_" + svc, Subjects: []string{"other." + svc}}); err == nil {
				t.Error("stream created")
			}
			cancel()
			other := topology.ConsumerScoring
			if svc == "scoring" {
				other = topology.ConsumerOffers
			}
			// Pulling another's consumer: the request is refused, nothing is delivered.
			c4, cancel := short()
			if _, err := nc.RequestWithContext(c4, "$JS.API.CONSUMER.MSG.NEXT.LOANS."+other, []byte(`{"batch":1,"no_wait":true}`)); err == nil {
				t.Errorf("pull from %s answered", other)
			}
			cancel()
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
