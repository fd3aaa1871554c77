package deploytest

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/logging"
	"github.com/loanflow/loanflow/services/audit"
	"github.com/loanflow/loanflow/services/console"
	"github.com/loanflow/loanflow/services/ingress"
	"github.com/loanflow/loanflow/services/offers"
	"github.com/loanflow/loanflow/services/scoring"
)

// setting is one environment variable a Config type reads.
type setting struct {
	Name       string
	HasDefault bool
}

// settingsOf lists the env tags of t and its nested structs, as caarlos0/env reads them.
func settingsOf(t reflect.Type) []setting {
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("env")
		if tag == "-" {
			continue
		}
		if tag == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, settingsOf(f.Type)...)
			continue
		}
		if tag == "" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		_, hasDefault := f.Tag.Lookup("envDefault")
		out = append(out, setting{Name: name, HasDefault: hasDefault})
	}
	return out
}

// processSettings are read by every service binary besides its Config: the admin listener and
// logging (pkg/service), and the OpenTelemetry exporter's own variables.
func processSettings() []setting {
	return append(settingsOf(reflect.TypeFor[admin.Settings]()), settingsOf(reflect.TypeFor[logging.Settings]())...)
}

// serviceConfigs are the Config types of the service binaries, by compose and Kubernetes
// service name.
var serviceConfigs = map[string]reflect.Type{
	"ingress": reflect.TypeFor[ingress.Config](),
	"scoring": reflect.TypeFor[scoring.Config](),
	"offers":  reflect.TypeFor[offers.Config](),
	"audit":   reflect.TypeFor[audit.Config](),
	"console": reflect.TypeFor[console.Config](),
}

// optional are the settings without a default that a deployment may leave unset: each has a
// documented meaning when empty. Any other setting without a default must be set.
var optional = map[string]bool{
	"LOANFLOW_TLS_CERT": true, "LOANFLOW_TLS_KEY": true, "LOANFLOW_ALLOW_CIDRS": true,
	"LOANFLOW_POLICY_FILE": true, "LOANFLOW_CATALOG_FILE": true,
	"NATS_CREDS": true, "NATS_NKEY_SEED": true, "NATS_CERT": true, "NATS_KEY": true,
	// scoring reads the phone key only to import client files, a job of its own.
	"LOANFLOW_PHONE_KEY@scoring": true,
	// console: HTTPS of its own only without a TLS-terminating proxy; accounts from the
	// variable, the file or both (Run refuses to start with none).
	"LOANFLOW_CONSOLE_TLS_CERT": true, "LOANFLOW_CONSOLE_TLS_KEY": true,
	"LOANFLOW_CONSOLE_USERS": true, "LOANFLOW_CONSOLE_USERS_FILE": true,
}

// deployed are the settings every deployed service must have although they have defaults: the
// defaults are the single-process ones.
var deployed = []string{
	"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CA", "NATS_INBOX_PREFIX",
	"LOANFLOW_NATS_REPLICAS", "LOANFLOW_PROVISION", "LOANFLOW_ADMIN_ADDR",
}

// readsOf returns every variable the service reads, and those a deployment must set.
func readsOf(t *testing.T, service string) (reads map[string]bool, required []string) {
	t.Helper()
	typ, ok := serviceConfigs[service]
	if !ok {
		t.Fatalf("no Config type for service %q", service)
	}
	reads = map[string]bool{}
	for _, s := range append(settingsOf(typ), processSettings()...) {
		reads[s.Name] = true
		if !s.HasDefault && !optional[s.Name] && !optional[s.Name+"@"+service] {
			required = append(required, s.Name)
		}
	}
	for _, name := range deployed {
		if !reads[name] {
			t.Fatalf("%s does not read %s: the deployed list is stale", service, name)
		}
		required = append(required, name)
	}
	sort.Strings(required)
	return reads, required
}

// readByProcess reports variables honoured outside the Config types (OpenTelemetry's own).
func readByProcess(name string) bool { return strings.HasPrefix(name, "OTEL_") }

func TestSettingsReflectionFindsNestedSettings(t *testing.T) {
	reads, required := readsOf(t, "ingress")
	for _, want := range []string{"NATS_URL", "LOANFLOW_BEARER_TOKENS", "LOANFLOW_SYNC_BUDGET", "LOANFLOW_ADMIN_ADDR", "LOG_LEVEL"} {
		if !reads[want] {
			t.Errorf("ingress reads: %s missing", want)
		}
	}
	for _, want := range []string{"LOANFLOW_BEARER_TOKENS", "LOANFLOW_PHONE_KEY", "NATS_PASSWORD"} {
		if !contains(required, want) {
			t.Errorf("ingress required: %s missing from %v", want, required)
		}
	}
	if contains(required, "LOANFLOW_SYNC_BUDGET") {
		t.Error("a setting with a default is required")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
