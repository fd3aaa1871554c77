package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// notFound answers every call like a partner endpoint that received nothing yet; broken, it
// forgets the search_id.
func notFound(broken bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			SearchID string `json:"search_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if broken {
			body.SearchID = ""
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"search_id": body.SearchID, "message": "Заявок с таким search_id не найдено"})
	})
}

func TestExitStatus(t *testing.T) {
	good := httptest.NewServer(notFound(false))
	defer good.Close()
	bad := httptest.NewServer(notFound(true))
	defer bad.Close()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"list", []string{"--list"}, 0, "concurrent_duplicates", ""},
		{"no URL", []string{"--token", "t"}, 2, "", "--url is required"},
		{"unknown scenario", []string{"--url", good.URL, "--run", "nope"}, 2, "", `unknown scenario "nope"`},
		{"stray argument", []string{"--url", good.URL, "extra"}, 2, "", "unexpected arguments"},
		{"passing endpoint", []string{"--url", good.URL + "/integrations", "--token", "t", "--run", "not_found"}, 0, "1 passed, 0 failed, 0 skipped — PASS", ""},
		{"failing endpoint", []string{"--url", bad.URL + "/integrations", "--token", "t", "--run", "not_found"}, 1, `search_id "", want`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(context.Background(), tt.args, &stdout, &stderr); got != tt.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", got, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}

func TestJSONReport(t *testing.T) {
	srv := httptest.NewServer(notFound(false))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--url", srv.URL + "/integrations", "--token", "t", "--run", "not_found,malformed_json", "--json", file}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit status %d, want 1 (the fake answers 404 to malformed JSON)\n%s%s", code, stdout.String(), stderr.String())
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Passed, Failed int
		Scenarios      []struct{ Name, Status string }
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, raw)
	}
	if rep.Passed != 1 || rep.Failed != 1 || len(rep.Scenarios) != 2 || rep.Scenarios[0].Status != "pass" || rep.Scenarios[1].Status != "fail" {
		t.Errorf("report %s", raw)
	}
}
