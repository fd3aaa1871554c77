package console

import (
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

// entry is one update of the underwriting bucket as its watcher delivers it.
type entry struct {
	key   string
	value []byte
	op    jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return "underwriting" }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return 1 }
func (e entry) Created() time.Time              { return time.Time{} }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// openCase is an undecided case received at received, due at decideBy.
func openCase(id string, received, decideBy time.Duration) underwriting.Case {
	return underwriting.Case{SearchID: id, State: underwriting.StateOpen, ReceivedAt: at(received), ReferredAt: at(received + 50*time.Millisecond), DecideBy: at(decideBy)}
}

func takenCase(id string, received, decideBy time.Duration) underwriting.Case {
	c := openCase(id, received, decideBy)
	c.State, c.TakenBy, c.TakenAt = underwriting.StateTaken, "ivanova", at(received+time.Second)
	return c
}

func decidedCase(id string, received, decided time.Duration) underwriting.Case {
	c := openCase(id, received, received+2*time.Minute)
	c.State, c.Decision = underwriting.StateDecided, &underwriting.Decision{By: "petrov", At: at(decided)}
	return c
}

// viewOf is a view holding cases, fed through apply as the watcher feeds it, in the order given.
func viewOf(t *testing.T, cases ...underwriting.Case) *view {
	t.Helper()
	v := newView(nil, slog.New(slog.DiscardHandler))
	for _, c := range cases {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		v.apply(entry{key: c.SearchID, value: b, op: jetstream.KeyValuePut})
	}
	v.apply(nil)
	return v
}

func ids(cs []underwriting.Case) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.SearchID
	}
	return out
}

func TestViewList(t *testing.T) {
	now := at(10 * time.Minute)
	tests := []struct {
		name                     string
		cases                    []underwriting.Case
		wantPending, wantDecided []string
	}{
		{
			name:        "open cases oldest first, whatever order they arrive in",
			cases:       []underwriting.Case{openCase("c", 3*time.Minute, 5*time.Minute), openCase("a", time.Minute, 3*time.Minute), openCase("d", 4*time.Minute, 6*time.Minute), openCase("b", 2*time.Minute, 4*time.Minute)},
			wantPending: []string{"a", "b", "c", "d"},
		},
		{
			name: "taken and expired cases stay on the queue, in age order with the open ones",
			cases: []underwriting.Case{
				takenCase("taken", 8*time.Minute, 10*time.Minute+30*time.Second),
				openCase("expired", 5*time.Minute, 7*time.Minute), // past decide_by, the fallback not yet applied
				openCase("fresh", 9*time.Minute, 11*time.Minute),
				takenCase("taken-expired", 6*time.Minute, 8*time.Minute),
			},
			wantPending: []string{"expired", "taken-expired", "taken", "fresh"},
		},
		{
			name: "same received_at: referred_at, then search_id",
			cases: func() []underwriting.Case {
				late := openCase("z-referred-first", time.Minute, 3*time.Minute)
				late.ReferredAt = at(time.Minute + time.Millisecond)
				same1, same2 := openCase("m2", time.Minute, 3*time.Minute), openCase("m1", time.Minute, 3*time.Minute)
				return []underwriting.Case{same1, late, same2}
			}(),
			wantPending: []string{"z-referred-first", "m1", "m2"},
		},
		{
			name: "decided cases below, latest decision first; older than recentlyDecided left out",
			cases: []underwriting.Case{
				decidedCase("d-old", 0, 10*time.Minute-recentlyDecided-time.Second),
				decidedCase("d-1", time.Minute, 2*time.Minute),
				openCase("o-2", 2*time.Minute, 4*time.Minute),
				decidedCase("d-3", 30*time.Second, 9*time.Minute),        // received before d-1, decided after it
				decidedCase("d-edge", 0, 10*time.Minute-recentlyDecided), // exactly recentlyDecided ago: still shown
				openCase("o-1", time.Minute, 3*time.Minute),
			},
			wantPending: []string{"o-1", "o-2"},
			wantDecided: []string{"d-3", "d-1", "d-edge"},
		},
		{
			name: "a decided case without its decision is not listed",
			cases: func() []underwriting.Case {
				c := openCase("broken", time.Minute, 3*time.Minute)
				c.State = underwriting.StateDecided
				return []underwriting.Case{c}
			}(),
		},
		{name: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every order of arrival must list the same way.
			for range 5 {
				cases := slices.Clone(tt.cases)
				slices.Reverse(cases)
				for _, order := range [][]underwriting.Case{tt.cases, cases} {
					pending, decided := viewOf(t, order...).list(now)
					if got := ids(pending); !slices.Equal(got, tt.wantPending) {
						t.Errorf("pending = %v, want %v", got, tt.wantPending)
					}
					if got := ids(decided); !slices.Equal(got, tt.wantDecided) {
						t.Errorf("decided = %v, want %v", got, tt.wantDecided)
					}
				}
			}
		})
	}
}

func TestViewApply(t *testing.T) {
	v := viewOf(t, openCase("a", time.Minute, 3*time.Minute), openCase("b", 2*time.Minute, 4*time.Minute))
	if !v.ready() {
		t.Error("the view is not ready after the initial values")
	}
	// b is taken, then a is deleted, then a broken value for c is ignored.
	b, _ := json.Marshal(takenCase("b", 2*time.Minute, 4*time.Minute))
	v.apply(entry{key: "b", value: b, op: jetstream.KeyValuePut})
	v.apply(entry{key: "a", op: jetstream.KeyValueDelete})
	v.apply(entry{key: "c", value: []byte("{not json"), op: jetstream.KeyValuePut})
	pending, _ := v.list(at(3 * time.Minute))
	if got := ids(pending); !slices.Equal(got, []string{"b"}) || pending[0].State != underwriting.StateTaken {
		t.Errorf("pending = %v (%+v), want b taken", got, pending)
	}
}

func TestViewPrune(t *testing.T) {
	now := at(time.Hour)
	v := viewOf(t,
		decidedCase("old", 0, now.Sub(t0)-recentlyDecided-time.Second),
		decidedCase("recent", 0, now.Sub(t0)-recentlyDecided+time.Second),
		openCase("expired-long-ago", 0, 2*time.Minute), // undecided: kept however old, the fallback still owes it
		takenCase("taken", 0, 2*time.Minute),
	)
	v.prune(now)
	var got []string
	for k := range v.cases {
		got = append(got, k)
	}
	slices.Sort(got)
	if want := []string{"expired-long-ago", "recent", "taken"}; !slices.Equal(got, want) {
		t.Errorf("after prune: %v, want %v", got, want)
	}
	// Later, the recent one goes too.
	v.prune(now.Add(2 * time.Second))
	if _, ok := v.cases["recent"]; ok {
		t.Error("a case decided more than recentlyDecided ago is kept")
	}
}

func TestPageLeft(t *testing.T) {
	tests := []struct {
		left time.Duration
		lang string
		want string
	}{
		{2 * time.Minute, "en", "2:00"},
		{2*time.Minute - time.Millisecond, "en", "2:00"}, // rounded up: a countdown shows 0:00 only once it is over
		{119 * time.Second, "en", "1:59"},
		{61 * time.Second, "en", "1:01"},
		{60 * time.Second, "en", "1:00"},
		{59*time.Second + 1, "en", "1:00"},
		{59 * time.Second, "en", "0:59"},
		{10 * time.Second, "en", "0:10"},
		{time.Second, "en", "0:01"},
		{time.Nanosecond, "en", "0:01"},
		{10*time.Minute + 5*time.Second, "en", "10:05"},
		{90 * time.Minute, "en", "90:00"},
		{0, "en", "expired"},
		{-time.Second, "en", "expired"},
		{-time.Hour, "ru", "истекло"},
		{0, "ru", "истекло"},
	}
	for _, tt := range tests {
		p := &page{Lang: tt.lang, Now: t0}
		if got := p.Left(t0.Add(tt.left)); got != tt.want {
			t.Errorf("Left(now%+v) in %s = %q, want %q", tt.left, tt.lang, got, tt.want)
		}
	}
}
