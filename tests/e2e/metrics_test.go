package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// allConsumers are the durable consumers of the all-in-one, whose lag /metrics reports.
var allConsumers = []string{
	topology.ConsumerScoring, topology.ConsumerOffers, topology.ConsumerAudit,
	topology.ConsumerFailures, topology.ConsumerDeadline, topology.ConsumerConsole,
}

// sample returns the value of one series (name{labels} as exposed, labels sorted by name) in
// a Prometheus text exposition, and whether it is there.
func sample(t *testing.T, exposition, series string) (float64, bool) {
	t.Helper()
	for line := range strings.Lines(exposition) {
		value, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("series %s: value %q: %v", series, value, err)
		}
		return v, true
	}
	return 0, false
}

// TestConsumerMetricsOnAdmin follows a referred application nobody decides through the
// all-in-one's /metrics: the console's fallback timer and ingress's deadline timer are
// redeliveries of the events they wait on, and every consumer's lag is reported and drains to
// zero.
func TestConsumerMetricsOnAdmin(t *testing.T) {
	ops := admin.NewOps()
	const deadline = 3 * time.Second
	s := start(t, options{budget: 100 * time.Millisecond, ops: ops, configure: func(c *allinone.Config) {
		c.Ingress.AnswerDeadline = deadline
	}})
	adm := httptest.NewServer(admin.Handler(ops, false))
	defer adm.Close()

	const id = "e2e-metrics-referred-1"
	s.postReferred(id)
	// The console's fallback decides it at 3/4 of the deadline.
	if a := s.until(id); a.status != http.StatusOK || a.body["status"] != "done" {
		t.Fatalf("referred application: %d %s, want done by the fallback", a.status, a.raw)
	}
	deadlineRedeliveries := `loanflow_consumer_redeliveries_total{consumer="` + topology.ConsumerDeadline + `"}`
	natstest.WaitFor(t, "the deadline consumer's redelivery at the deadline", func() bool {
		_, ok := sample(t, get(t, adm.URL+"/metrics"), deadlineRedeliveries)
		return ok
	})
	natstest.WaitFor(t, "every consumer's lag back to zero", func() bool {
		m := get(t, adm.URL+"/metrics")
		for _, c := range allConsumers {
			for _, name := range []string{"loanflow_consumer_pending", "loanflow_consumer_ack_pending"} {
				if v, ok := sample(t, m, name+`{consumer="`+c+`"}`); !ok || v != 0 {
					return false
				}
			}
		}
		return true
	})
	m := get(t, adm.URL+"/metrics")
	// Both timers are redeliveries: ingress's deadline consumer got the received event on arrival
	// and again at the deadline (found decided), the console the referral on arrival and again
	// at its decide-by time (the fallback). The other stages handled each event once.
	for c, want := range map[string]float64{
		topology.ConsumerDeadline: 1, topology.ConsumerConsole: 1,
		topology.ConsumerScoring: 0, topology.ConsumerOffers: 0, topology.ConsumerAudit: 0, topology.ConsumerFailures: 0,
	} {
		series := `loanflow_consumer_redeliveries_total{consumer="` + c + `"}`
		if v, _ := sample(t, m, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	if strings.Contains(m, "loanflow_dead_letters_total{") {
		t.Error("a dead letter counted for an application that was decided")
	}
}
