package ingress

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts the public endpoint's answers by route and status, and times them.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loanflow_http_requests_total",
			Help: "Answers of the public endpoint by route pattern and HTTP status.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loanflow_http_request_duration_seconds",
			Help: "Time to answer on the public endpoint, by route pattern.",
			// The sync budget is 250 ms by default and the p99 target 50 ms: resolution there.
			Buckets: []float64{.002, .005, .01, .02, .035, .05, .075, .1, .15, .25, .35, .5, 1, 2.5},
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingress metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(route string, code int, took time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
}
