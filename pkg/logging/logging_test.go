package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"

	"github.com/loanflow/loanflow/pkg/logging"
)

// TestLevelsAndFormats logs one line at each level and checks which come out, and how.
func TestLevelsAndFormats(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    logging.Settings
		// want are the messages written, in order.
		want []string
		json bool
	}{
		{"info json", logging.Settings{Level: "info", Format: "json"}, []string{"info", "warn", "error"}, true},
		{"debug", logging.Settings{Level: "debug", Format: "json"}, []string{"debug", "info", "warn", "error"}, true},
		{"warn, upper case", logging.Settings{Level: "WARN", Format: "JSON"}, []string{"warn", "error"}, true},
		{"error", logging.Settings{Level: "error"}, []string{"error"}, true},
		{"empty format is json", logging.Settings{Level: "info"}, []string{"info", "warn", "error"}, true},
		{"text", logging.Settings{Level: "info", Format: "text"}, []string{"info", "warn", "error"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := logging.New(&buf, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("debug")
			log.Info("info")
			log.Warn("warn")
			log.Error("error")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d (%v):\n%s", len(lines), len(tc.want), tc.want, buf.String())
			}
			for i, l := range lines {
				var rec map[string]any
				err := json.Unmarshal([]byte(l), &rec)
				if tc.json != (err == nil) {
					t.Fatalf("line %d %q: JSON %v, want JSON %v", i, l, err == nil, tc.json)
				}
				if tc.json {
					if got := rec["msg"]; got != tc.want[i] {
						t.Errorf("line %d msg %v, want %s", i, got, tc.want[i])
					}
					if got := rec["level"]; got != strings.ToUpper(tc.want[i]) {
						t.Errorf("line %d level %v, want %s", i, got, strings.ToUpper(tc.want[i]))
					}
				} else if !strings.Contains(l, "level="+strings.ToUpper(tc.want[i])+" msg="+tc.want[i]) {
					t.Errorf("text line %d = %q, want level and msg %s", i, l, tc.want[i])
				}
			}
		})
	}
}

// TestAttributesAreJSONFields checks that the fields services log with (the service, the
// correlation id, a masked phone) come out as top-level JSON fields an operator can filter on.
func TestAttributesAreJSONFields(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, logging.Settings{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	log.With("service", "ingress").Info("answered", "correlation_id", "req-1", "search_id", "s-1", "phone_mask", "93******40")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON line: %v: %s", err, buf.String())
	}
	for k, want := range map[string]string{"service": "ingress", "correlation_id": "req-1", "search_id": "s-1", "phone_mask": "93******40", "msg": "answered"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %q", k, got[k], want)
		}
	}
}

func TestBadSettingsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		s    logging.Settings
		want string
	}{
		{logging.Settings{Level: "verbose", Format: "json"}, "LOG_LEVEL"},
		{logging.Settings{Level: "", Format: "json"}, "LOG_LEVEL"},
		{logging.Settings{Level: "info", Format: "xml"}, "LOG_FORMAT"},
	} {
		log, err := logging.New(&bytes.Buffer{}, tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, %v; want an error naming %s", tc.s, log, err, tc.want)
		}
	}
}

// TestSettingsFromTheEnvironment checks the defaults (info, JSON) and that LOG_LEVEL and
// LOG_FORMAT are read.
func TestSettingsFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		want          logging.Settings
	}{
		{"", "", logging.Settings{Level: "info", Format: "json"}},
		{"debug", "text", logging.Settings{Level: "debug", Format: "text"}},
	} {
		t.Setenv("LOG_LEVEL", tc.level)
		t.Setenv("LOG_FORMAT", tc.format)
		var got logging.Settings
		if err := env.Parse(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("LOG_LEVEL=%q LOG_FORMAT=%q: settings %+v, want %+v", tc.level, tc.format, got, tc.want)
		}
	}
}
