package bus

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
)

// Settings are the messaging settings every service reads from the environment.
type Settings struct {
	// URL is the NATS server or cluster (comma-separated URLs).
	URL string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// Replicas of every stream and bucket: 1 on a single server, 3 on a cluster.
	Replicas int `env:"LOANFLOW_NATS_REPLICAS" envDefault:"1"`
	// LoansMaxAge bounds how long pipeline events are kept.
	LoansMaxAge time.Duration `env:"LOANFLOW_LOANS_MAX_AGE" envDefault:"168h"`
	// AuditMaxAge bounds how long audit records are kept.
	AuditMaxAge time.Duration `env:"LOANFLOW_AUDIT_MAX_AGE" envDefault:"43800h"`
	// DecisionsTTL bounds how long an answer can be polled and an application repeated.
	DecisionsTTL time.Duration `env:"LOANFLOW_DECISIONS_TTL" envDefault:"168h"`
	// PublishTimeout bounds the wait for one JetStream publish acknowledgement.
	PublishTimeout time.Duration `env:"LOANFLOW_PUBLISH_TIMEOUT" envDefault:"2s"`
	// MaxDeliver is how many times a stage tries one event before it fails the application.
	MaxDeliver int `env:"LOANFLOW_MAX_DELIVER" envDefault:"5"`
	// BackOff is the delay before each retry; the last value repeats.
	BackOff []time.Duration `env:"LOANFLOW_BACKOFF" envDefault:"1s,2s,5s,10s"`
	// AckWait is how long the server waits for a stage to finish one event.
	AckWait time.Duration `env:"LOANFLOW_ACK_WAIT" envDefault:"30s"`
	// Concurrency is how many events one service process handles at once.
	Concurrency int `env:"LOANFLOW_CONCURRENCY" envDefault:"32"`
	// ShutdownTimeout bounds each step of a graceful shutdown.
	ShutdownTimeout time.Duration `env:"LOANFLOW_SHUTDOWN_TIMEOUT" envDefault:"15s"`

	// Provision says whether the service declares (creates or updates) the streams, consumers
	// and buckets it uses at start: true, the default (and nil, for settings built in code), as
	// always; false only checks that an administrator provisioned them and binds to them,
	// without one create or update call, for least-privilege NATS users.
	Provision *bool `env:"LOANFLOW_PROVISION" envDefault:"true"`
	// User and Password authenticate the connection (nats-server users).
	User     string `env:"NATS_USER"`
	Password string `env:"NATS_PASSWORD"`
	// Creds is a JWT credentials file (decentralised auth), instead of a user and password.
	Creds string `env:"NATS_CREDS"`
	// NKeySeed is a file holding an NKey seed to authenticate with, instead of a password.
	NKeySeed string `env:"NATS_NKEY_SEED"`
	// CA is the PEM file of the authorities that sign the servers' certificates: it turns TLS
	// on and trusts only them.
	CA string `env:"NATS_CA"`
	// Cert and Key are a PEM client certificate and key, for servers that verify clients.
	Cert string `env:"NATS_CERT"`
	Key  string `env:"NATS_KEY"`
	// InboxPrefix starts the connection's reply subjects (default _INBOX): a user allowed to
	// subscribe only to its own prefix cannot read the replies, pulled messages included, of
	// another.
	InboxPrefix string `env:"NATS_INBOX_PREFIX"`
}

// Topology returns the declarations' options for these settings.
func (s Settings) Topology() topology.Options {
	o := topology.DefaultOptions()
	o.Replicas = max(s.Replicas, 1)
	o.Storage = jetstream.FileStorage
	if s.LoansMaxAge > 0 {
		o.LoansMaxAge = s.LoansMaxAge
	}
	if s.AuditMaxAge > 0 {
		o.AuditMaxAge = s.AuditMaxAge
	}
	if s.DecisionsTTL > 0 {
		o.DecisionsTTL = s.DecisionsTTL
	}
	return o
}

// Retry returns the pipeline stages' redelivery policy.
func (s Settings) Retry() topology.Retry {
	r := topology.DefaultRetry()
	if s.MaxDeliver > 0 {
		r.MaxDeliver = s.MaxDeliver
	}
	if len(s.BackOff) > 0 {
		r.BackOff = s.BackOff
	}
	if s.AckWait > 0 {
		r.AckWait = s.AckWait
	}
	r.MaxAckPending = max(r.MaxAckPending, s.Concurrency*4)
	return r
}

// MarkerRetry is the failure marker's policy: marking an application failed is a KV write that
// must not be given up on, so it retries for a long time.
func (s Settings) MarkerRetry() topology.Retry {
	r := s.Retry()
	r.MaxDeliver = 1000
	return r
}

// AuditRetry is the audit's policy: the audit must be complete, so it retries an event with
// back-off until the AUDIT stream takes it.
func (s Settings) AuditRetry() topology.Retry {
	r := s.Retry()
	r.MaxDeliver = 100000
	return r
}
