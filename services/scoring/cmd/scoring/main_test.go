package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/scoring"
)

const lines = 25_000

// clientFile is a generated client file: its text, the line of each bad record with the
// reason the import must give, and every phone number in it.
type clientFile struct {
	name   string
	data   string
	bad    map[int]string
	phones map[string]bool
}

// badAt reports whether data line i (from 0) is a bad one: the first, the middle, the last,
// and one in every 997 between.
func badAt(i, n int) bool { return i == 0 || i == n/2 || i == n-1 || i%997 == 500 }

// generate writes n client records in format, bad ones where badAt says, the bad ones of
// several kinds (a phone in a money column among them, so that a leak would show).
func generate(format string, n int, badAt func(i, n int) bool) clientFile {
	f := clientFile{name: "clients." + format, bad: map[int]string{}, phones: map[string]bool{}}
	var b strings.Builder
	first := 1
	if format == "csv" {
		b.WriteString("phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client,stop_list\n")
		first = 2
	}
	for i := range n {
		phone := fmt.Sprintf("9%09d", 100_000_000+i)
		f.phones[phone] = true
		line := first + i
		kind := -1
		if badAt(i, n) {
			kind = i % 4
		}
		switch format {
		case "csv":
			switch kind {
			case -1:
				fmt.Fprintf(&b, "%s,%d,1000,B,2020-01-31,false,false\n", phone, 50_000+i)
			case 0:
				fmt.Fprintf(&b, "%s,50000,1000,Z,,false,false\n", phone)
				f.bad[line] = "bureau_grade must be A, B, C or D"
			case 1:
				fmt.Fprintf(&b, "B,%s,1000,B,,false,false\n", phone)
				// The phone is a valid income: only the phone column is at fault.
				f.bad[line] = "phone must be exactly 10 digits"
			case 2:
				fmt.Fprintf(&b, "%s,50000,1000,B\n", phone)
				f.bad[line] = "want 7 fields as in the header"
			case 3:
				fmt.Fprintf(&b, "%s,50000,%sx,B,,false,false\n", phone, phone)
				f.bad[line] = "monthly_debt_payments must be a number of roubles"
			}
		case "jsonl":
			switch kind {
			case -1:
				fmt.Fprintf(&b, `{"phone":%q,"monthly_income":%d,"monthly_debt_payments":1000,"bureau_grade":"B","client_since":"2020-01-31","salary_client":false,"stop_list":false}`+"\n", phone, 50_000+i)
			case 0:
				fmt.Fprintf(&b, `{"phone":%q,"monthly_income":50000,"monthly_debt_payments":1000,"bureau_grade":"Z","salary_client":false,"stop_list":false}`+"\n", phone)
				f.bad[line] = "bureau_grade must be A, B, C or D"
			case 1:
				fmt.Fprintf(&b, `{"phone":%s,"monthly_income":50000,"monthly_debt_payments":1000,"bureau_grade":"B","salary_client":false,"stop_list":false}`+"\n", phone)
				f.bad[line] = "phone must be a string"
			case 2:
				fmt.Fprintf(&b, `{"phone":%q,"monthly_income":50000,`+"\n", phone)
				f.bad[line] = "not a JSON object"
			case 3:
				fmt.Fprintf(&b, `{"phone":%q,"monthly_income":50000,"monthly_debt_payments":1000,"bureau_grade":"B","salary_client":false,"stop_list":false,%q:1}`+"\n", phone, phone)
				f.bad[line] = "1 unknown fields, not named as they may hold personal data"
			}
		}
	}
	f.data = b.String()
	return f
}

// progressLine matches the import's progress lines, with the percentage the file size allows.
var progressLine = regexp.MustCompile(`: (\d+) lines, [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]?i?B \((\d+)%\) read, (\d+) imported, (\d+) bad \(\d+ lines/s\)$`)

func TestImportClientsReportsEveryBadLineAndProgress(t *testing.T) {
	tests := []struct {
		name string
		file clientFile
	}{
		{"csv", generate("csv", lines, badAt)},
		{"jsonl", generate("jsonl", lines, badAt)},
		// A long file of bad lines still shows its progress: it counts lines read, not imported.
		{"mostly bad", generate("jsonl", lines, func(i, n int) bool { return i%1000 != 1 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			cfg := scoring.Config{Bus: natstest.Settings(srv.ClientURL()), PhoneKey: "cmd-test-key-0123456789abcdef", Logger: slog.New(slog.DiscardHandler)}
			path := filepath.Join(t.TempDir(), tt.file.name)
			if err := os.WriteFile(path, []byte(tt.file.data), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := importClients(context.Background(), cfg, path, &out)
			good := lines - len(tt.file.bad)
			if want := fmt.Sprintf("%d bad lines", len(tt.file.bad)); err == nil || err.Error() != want {
				t.Errorf("importClients = %v, want %q", err, want)
			}

			text := out.String()
			var progress []string
			reported := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
				switch {
				case progressLine.MatchString(l):
					progress = append(progress, l)
				case strings.Contains(l, ": line "):
					reported[l] = true
				}
			}
			for line, reason := range tt.file.bad {
				if want := fmt.Sprintf("%s: line %d: %s", path, line, reason); !reported[want] {
					t.Errorf("output lacks %q", want)
				}
			}
			if len(reported) != len(tt.file.bad) {
				t.Errorf("%d bad lines reported, want %d", len(reported), len(tt.file.bad))
			}
			// Every 10 000 lines, and the end at 100%.
			for _, want := range []string{": 10000 lines,", ": 20000 lines,"} {
				if !strings.Contains(strings.Join(progress, "\n"), want) {
					t.Errorf("no progress line with %q in\n%s", want, strings.Join(progress, "\n"))
				}
			}
			if len(progress) == 0 {
				t.Fatalf("no progress line in\n%s", text)
			}
			t.Logf("progress:\n%s", strings.Join(progress, "\n"))
			end := progressLine.FindStringSubmatch(progress[len(progress)-1])
			if end[2] != "100" || end[3] != fmt.Sprint(good) || end[4] != fmt.Sprint(len(tt.file.bad)) {
				t.Errorf("last progress line %q, want 100%%, %d imported, %d bad", progress[len(progress)-1], good, len(tt.file.bad))
			}
			summary := fmt.Sprintf("%s: %d records, %d imported, %d rejected\n", path, lines, good, len(tt.file.bad))
			if !strings.HasSuffix(text, summary) {
				t.Errorf("output ends %q, want %q", text[max(0, len(text)-200):], summary)
			}

			if leaked := clearPhones(text, tt.file.phones); len(leaked) > 0 {
				t.Errorf("output shows %d phone numbers in clear, e.g. %s", len(leaked), leaked[0])
			}
			// Keys are hex HMACs and may hold ten digits in a row by chance: they are checked to
			// be hashes of the file's phones, the values to hold none in clear.
			hasher, err := pseudonym.New([]byte(cfg.PhoneKey))
			if err != nil {
				t.Fatal(err)
			}
			hashes := make(map[string]bool, len(tt.file.phones))
			for p := range tt.file.phones {
				hashes[hasher.Phone(p)] = true
			}
			stored := bucket(t, srv.ClientURL())
			if len(stored) != good {
				t.Errorf("the bucket holds %d profiles, want %d", len(stored), good)
			}
			var values strings.Builder
			for key, value := range stored {
				if !hashes[key] {
					t.Fatalf("the bucket has a key %q that is not the hash of a phone of the file", key)
				}
				values.WriteString(value + "\n")
			}
			if leaked := clearPhones(values.String(), tt.file.phones); len(leaked) > 0 {
				t.Errorf("the clients bucket holds %d phone numbers in clear, e.g. %s", len(leaked), leaked[0])
			}
		})
	}
}

// clearPhones lists the phones of the file that text holds.
func clearPhones(text string, phones map[string]bool) []string {
	var found []string
	for _, at := range regexp.MustCompile(`\d{10,}`).FindAllStringIndex(text, -1) {
		// A phone may sit inside a longer run of digits.
		digits := text[at[0]:at[1]]
		for i := 0; i+10 <= len(digits); i++ {
			if phones[digits[i:i+10]] {
				found = append(found, fmt.Sprintf("%s in %q", digits[i:i+10], text[max(0, at[0]-60):min(len(text), at[1]+60)]))
			}
		}
	}
	return found
}

// bucket is every key and value the clients bucket's stream holds, read message by message
// rather than through the KV API, so that nothing stored escapes the check.
func bucket(t *testing.T, url string) map[string]string {
	t.Helper()
	nc, js, err := bus.Connect(url, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cons, err := js.OrderedConsumer(context.Background(), "KV_"+topology.BucketClients, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "$KV." + topology.BucketClients + "."
	stored := map[string]string{}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			key, ok := strings.CutPrefix(m.Subject(), prefix)
			if !ok {
				t.Fatalf("a message on %q in the bucket's stream", m.Subject())
			}
			if _, dup := stored[key]; dup {
				t.Errorf("key %s stored twice", key)
			}
			stored[key] = string(m.Data())
		}
		if got == 0 {
			return stored
		}
	}
}
