package bus

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Provisions reports whether the service declares what it uses (LOANFLOW_PROVISION, default
// true) rather than only binding to what an administrator provisioned.
func (s Settings) Provisions() bool { return s.Provision == nil || *s.Provision }

// Options returns the connection options of the settings' credentials, TLS and inbox prefix;
// none when none is set.
func (s Settings) Options() ([]nats.Option, error) {
	var opts []nats.Option
	auth := 0
	if s.User != "" || s.Password != "" {
		auth++
		opts = append(opts, nats.UserInfo(s.User, s.Password))
	}
	if s.Creds != "" {
		auth++
		opts = append(opts, nats.UserCredentials(s.Creds))
	}
	if s.NKeySeed != "" {
		auth++
		o, err := nats.NkeyOptionFromSeed(s.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED: %w", err)
		}
		opts = append(opts, o)
	}
	if auth > 1 {
		return nil, errors.New("NATS_USER/NATS_PASSWORD, NATS_CREDS, NATS_NKEY_SEED: give one of them")
	}
	if (s.Cert == "") != (s.Key == "") {
		return nil, errors.New("NATS_CERT, NATS_KEY: give both or neither")
	}
	if s.CA != "" {
		opts = append(opts, nats.RootCAs(s.CA))
	}
	if s.Cert != "" {
		opts = append(opts, nats.ClientCert(s.Cert, s.Key))
	}
	if s.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(s.InboxPrefix))
	}
	return opts, nil
}
