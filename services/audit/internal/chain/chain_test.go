package chain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
)

func TestHashIsDeterministic(t *testing.T) {
	base := Record{
		Seq: 7, Time: testTime, EventType: events.TypeApplicationFailed, SearchID: testSearchID,
		Stage: StageScoring, CorrelationID: "corr-1", SourceSeq: 42,
	}
	tests := []struct {
		name   string
		a, b   func(r *Record)
		wantEq bool
	}{
		{"same record", func(r *Record) {}, func(r *Record) {}, true},
		{"payload key order",
			func(r *Record) {
				r.Payload = []byte(`{"stage":"scoring","reason":"poison","n":{"b":1,"a":[2,{"y":1,"x":2}]}}`)
			},
			func(r *Record) {
				r.Payload = []byte(`{ "n": {"a":[2,{"x":2,"y":1}],"b":1}, "reason":"poison", "stage":"scoring" }`)
			}, true},
		{"payload escapes",
			func(r *Record) { r.Payload = []byte(`{"detail":"a<b & \"c\"/д"}`) },
			func(r *Record) { r.Payload = []byte(`{"detail":"a\u003cb \u0026 \"c\"\/\u0434"}`) }, true},
		{"time zone",
			func(r *Record) {},
			func(r *Record) { r.Time = r.Time.In(time.FixedZone("MSK", 3*3600)) }, true},
		{"empty payload is null",
			func(r *Record) { r.Payload = nil },
			func(r *Record) { r.Payload = []byte("null") }, true},
		{"payload value", func(r *Record) { r.Payload = []byte(`{"a":1}`) },
			func(r *Record) { r.Payload = []byte(`{"a":2}`) }, false},
		{"number spelling is data", func(r *Record) { r.Payload = []byte(`{"a":1.50}`) },
			func(r *Record) { r.Payload = []byte(`{"a":1.5}`) }, false},
		{"seq", func(r *Record) {}, func(r *Record) { r.Seq++ }, false},
		{"time", func(r *Record) {}, func(r *Record) { r.Time = r.Time.Add(time.Nanosecond) }, false},
		{"event type", func(r *Record) {}, func(r *Record) { r.EventType += "x" }, false},
		{"search id", func(r *Record) {}, func(r *Record) { r.SearchID += "x" }, false},
		{"stage", func(r *Record) {}, func(r *Record) { r.Stage = StageOffers }, false},
		{"correlation id", func(r *Record) {}, func(r *Record) { r.CorrelationID += "x" }, false},
		{"source seq", func(r *Record) {}, func(r *Record) { r.SourceSeq++ }, false},
		{"fields do not run together",
			func(r *Record) { r.SearchID, r.Stage = "ab", "c" },
			func(r *Record) { r.SearchID, r.Stage = "a", "bc" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base, base
			tt.a(&a)
			tt.b(&b)
			if err := Seal(&a, GenesisHash); err != nil {
				t.Fatal(err)
			}
			if err := Seal(&b, GenesisHash); err != nil {
				t.Fatal(err)
			}
			if got := a.Hash == b.Hash; got != tt.wantEq {
				t.Errorf("equal hashes = %v, want %v (%s vs %s)", got, tt.wantEq, a.Hash, b.Hash)
			}
		})
	}
}

// TestCanonicalGolden pins the canonical encoding and its hash: changing either would break
// every chain already stored.
func TestCanonicalGolden(t *testing.T) {
	r := Record{
		Seq: 1, Time: testTime, EventType: events.TypeApplicationFailed, SearchID: testSearchID,
		Stage: StageAudit, CorrelationID: "corr-1", SourceSeq: 9,
		Payload: []byte(`{"stage":"audit", "detail":"tab\there", "deliveries":5, "x":[1.50,true,null]}`),
	}
	if err := Seal(&r, GenesisHash); err != nil {
		t.Fatal(err)
	}
	got, err := Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"time":"2026-11-03T10:15:04.123456789Z","event_type":"loan.application.failed.v1",` +
		`"search_id":"6f1c2a3e-8d4b-4c1a-9e2f-0a1b2c3d4e5f","stage":"audit","correlation_id":"corr-1",` +
		`"source_seq":9,"payload":{"deliveries":5,"detail":"tab\there","stage":"audit","x":[1.50,true,null]},` +
		`"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000"}`
	if string(got) != want {
		t.Errorf("Canonical:\n got %s\nwant %s", got, want)
	}
	if want := `{"deliveries":5,"detail":"tab\there","stage":"audit","x":[1.50,true,null]}`; string(r.Payload) != want {
		t.Errorf("sealed payload %s, want %s", r.Payload, want)
	}
	if want := "895fe9ac8df674739f0372f457bd9b2494d55e297f138b52c7f66a282c1a39da"; r.Hash != want {
		t.Errorf("Hash = %s, want %s", r.Hash, want)
	}
}

func TestChainVerifies(t *testing.T) {
	for _, n := range []int{0, 1, 2, 100} {
		recs := buildChain(t, n)
		v := NewVerifier(0, GenesisHash)
		for _, r := range recs {
			if err := v.Verify(r); err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
		}
		wantSeq, wantHash := uint64(0), GenesisHash
		if n > 0 {
			wantSeq, wantHash = recs[n-1].Seq, recs[n-1].Hash
		}
		if seq, hash := v.Head(); seq != wantSeq || hash != wantHash || v.Err() != nil {
			t.Errorf("n=%d: Head() = %d, %s, Err() = %v; want %d, %s, nil", n, seq, hash, v.Err(), wantSeq, wantHash)
		}
	}
}

// TestChainSurvivesJSON stores records as the adapter does and verifies what comes back.
func TestChainSurvivesJSON(t *testing.T) {
	recs := buildChain(t, 12)
	recs[4].Payload = json.RawMessage(`{"detail":"<a href=\"x\">&</a>\u2028","stage":"offers"}`)
	c, _ := NewChain(recs[3].Seq, recs[3].Hash)
	r, err := c.Append(recs[4])
	if err != nil {
		t.Fatal(err)
	}
	recs[4] = r
	recs = recs[:5]
	v := NewVerifier(0, GenesisHash)
	for _, r := range recs {
		b, err := json.Marshal(r) // escapes <, >, & and U+2028 in the payload
		if err != nil {
			t.Fatal(err)
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(back); err != nil {
			t.Fatalf("after JSON: %v\n%s", err, b)
		}
	}
}

func TestVerifierReportsFirstBreak(t *testing.T) {
	tests := []struct {
		name       string
		tamper     func(recs []Record) []Record
		wantSeq    uint64
		wantReason Reason
	}{
		{"tampered payload", func(recs []Record) []Record {
			recs[4].Payload = []byte(strings.Replace(string(recs[4].Payload), "300000.00", "900000.00", 1))
			return recs
		}, 5, ReasonHash},
		{"tampered payload, re-hashed", func(recs []Record) []Record {
			recs[4].Payload = []byte(`{"outcome":"rejected"}`)
			if err := Seal(&recs[4], recs[4].PrevHash); err != nil {
				t.Fatal(err)
			}
			return recs
		}, 6, ReasonPrevHash},
		{"tampered field", func(recs []Record) []Record { recs[2].SearchID = "other"; return recs }, 3, ReasonHash},
		{"tampered hash", func(recs []Record) []Record { recs[6].Hash = GenesisHash; return recs }, 7, ReasonHash},
		{"wrong prev hash", func(recs []Record) []Record { recs[3].PrevHash = recs[1].Hash; return recs }, 4, ReasonPrevHash},
		{"gap", func(recs []Record) []Record { return append(recs[:5:5], recs[6:]...) }, 6, ReasonSeqGap},
		{"first record missing", func(recs []Record) []Record { return recs[1:] }, 1, ReasonSeqGap},
		{"swapped", func(recs []Record) []Record { recs[7], recs[8] = recs[8], recs[7]; return recs }, 8, ReasonSeqGap},
		{"repeated", func(recs []Record) []Record { return append(recs[:3:3], recs[2:]...) }, 4, ReasonSeqGap},
		{"malformed payload", func(recs []Record) []Record { recs[8].Payload = []byte(`{"a":1,"a":2}`); return recs }, 9, ReasonMalformed},
		{"two breaks, first reported", func(recs []Record) []Record {
			recs[2].Payload, recs[5].PrevHash = []byte(`{}`), GenesisHash
			return recs
		}, 3, ReasonHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := tt.tamper(buildChain(t, 10))
			v := NewVerifier(0, GenesisHash)
			var first error
			for _, r := range recs {
				if err := v.Verify(r); err != nil && first == nil {
					first = err
				}
			}
			var be *BreakError
			if !errors.As(first, &be) {
				t.Fatalf("error %v, want a *BreakError", first)
			}
			if be.Seq != tt.wantSeq || be.Reason != tt.wantReason {
				t.Errorf("break at %d (%s), want %d (%s): %v", be.Seq, be.Reason, tt.wantSeq, tt.wantReason, be)
			}
			if v.Err() != first {
				t.Errorf("Err() = %v, want the first break %v", v.Err(), first)
			}
			if seq, _ := v.Head(); seq != tt.wantSeq-1 {
				t.Errorf("Head() seq = %d, want %d", seq, tt.wantSeq-1)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	recs := buildChain(t, 3)
	tests := []struct {
		name       string
		r          Record
		prev       string
		seq        uint64
		wantReason Reason // "" for no error
	}{
		{"first", recs[0], GenesisHash, 1, ""},
		{"middle", recs[1], recs[0].Hash, 2, ""},
		{"wrong seq", recs[1], recs[0].Hash, 3, ReasonSeqGap},
		{"wrong prev", recs[2], recs[0].Hash, 3, ReasonPrevHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.r, tt.prev, tt.seq)
			var be *BreakError
			switch {
			case tt.wantReason == "" && err != nil:
				t.Errorf("Verify: %v", err)
			case tt.wantReason != "" && (!errors.As(err, &be) || be.Reason != tt.wantReason || be.Seq != tt.seq):
				t.Errorf("Verify: %v, want %s at %d", err, tt.wantReason, tt.seq)
			}
		})
	}
}

func TestBreakErrorMessage(t *testing.T) {
	tests := []struct {
		err  *BreakError
		want string
	}{
		{&BreakError{Seq: 5, Reason: ReasonSeqGap, Want: "5", Got: "7"},
			"audit chain broken at seq 5: sequence gap: found record seq 7"},
		{&BreakError{Seq: 5, Reason: ReasonHash, Want: "aa", Got: "bb"},
			"audit chain broken at seq 5: wrong hash: want aa, got bb"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestSealRejects(t *testing.T) {
	ok := Record{Seq: 1, Time: testTime, EventType: events.TypeApplicationReceived, Payload: []byte(`{}`)}
	tests := []struct {
		name string
		edit func(r *Record)
		prev string
	}{
		{"short prev hash", func(r *Record) {}, "00"},
		{"uppercase prev hash", func(r *Record) {}, strings.Repeat("A", 64)},
		{"no seq", func(r *Record) { r.Seq = 0 }, GenesisHash},
		{"no time", func(r *Record) { r.Time = time.Time{} }, GenesisHash},
		{"invalid JSON", func(r *Record) { r.Payload = []byte(`{"a":}`) }, GenesisHash},
		{"invalid UTF-8 field", func(r *Record) { r.SearchID = "\xff" }, GenesisHash},
		{"year 10000", func(r *Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, GenesisHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			if err := Seal(&r, tt.prev); err == nil {
				t.Errorf("Seal accepted it: %+v", r)
			}
		})
	}
	if err := Seal(&ok, GenesisHash); err != nil {
		t.Errorf("Seal(valid record): %v", err)
	}
}

func TestNewChain(t *testing.T) {
	tests := []struct {
		seq     uint64
		hash    string
		wantErr bool
	}{
		{0, GenesisHash, false},
		{41, strings.Repeat("ab", 32), false},
		{0, strings.Repeat("ab", 32), true},
		{41, "xyz", true},
	}
	for _, tt := range tests {
		c, err := NewChain(tt.seq, tt.hash)
		if (err != nil) != tt.wantErr {
			t.Errorf("NewChain(%d, %q) error %v, want error %v", tt.seq, tt.hash, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		r, err := c.Append(Record{Time: testTime, Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != tt.seq+1 || r.PrevHash != tt.hash {
			t.Errorf("Append after (%d, %s): seq %d prev %s", tt.seq, tt.hash, r.Seq, r.PrevHash)
		}
		if seq, hash := c.Head(); seq != r.Seq || hash != r.Hash {
			t.Errorf("Head() = %d, %s; want %d, %s", seq, hash, r.Seq, r.Hash)
		}
	}
}

func TestAppendFailureKeepsHead(t *testing.T) {
	c, _ := NewChain(0, GenesisHash)
	if _, err := c.Append(Record{Time: testTime, Payload: []byte(`nope`)}); err == nil {
		t.Fatal("Append accepted an invalid payload")
	}
	if seq, hash := c.Head(); seq != 0 || hash != GenesisHash {
		t.Errorf("Head() after a failed Append = %d, %s; want 0, genesis", seq, hash)
	}
}

func BenchmarkVerify(b *testing.B) {
	const n = 3000
	recs := buildChain(b, n)
	stored := make([][]byte, n)
	size := 0
	for i, r := range recs {
		stored[i] = mustJSON(b, r)
		size += len(stored[i])
	}
	b.Logf("%d records, %d bytes of JSON on average", n, size/n)

	// records: the chain check alone, on records already decoded.
	b.Run("records", func(b *testing.B) {
		b.ReportAllocs()
		v := NewVerifier(0, GenesisHash)
		i := 0
		for b.Loop() {
			if i == n {
				v, i = NewVerifier(0, GenesisHash), 0
			}
			if err := v.Verify(recs[i]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	// parse: what the replay command does per stored message: decode, then check.
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		v := NewVerifier(0, GenesisHash)
		i := 0
		for b.Loop() {
			if i == n {
				v, i = NewVerifier(0, GenesisHash), 0
			}
			r, err := ParseRecord(stored[i])
			if err != nil {
				b.Fatal(err)
			}
			if err := v.Verify(r); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	// encoding_json: the same with json.Unmarshal, for comparison.
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		v := NewVerifier(0, GenesisHash)
		i := 0
		for b.Loop() {
			if i == n {
				v, i = NewVerifier(0, GenesisHash), 0
			}
			var r Record
			if err := json.Unmarshal(stored[i], &r); err != nil {
				b.Fatal(err)
			}
			if err := v.Verify(r); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
