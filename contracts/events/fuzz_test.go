package events_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/loanflow/loanflow/contracts/events"
)

// decoders builds an empty value of every v1 event payload, as consumers decode them.
var decoders = map[string]func() any{
	events.TypeApplicationReceived: func() any { return new(events.ApplicationReceived) },
	events.TypeApplicationScored:   func() any { return new(events.ApplicationScored) },
	events.TypeDecisionMade:        func() any { return new(events.DecisionMade) },
	events.TypeApplicationFailed:   func() any { return new(events.ApplicationFailed) },
	events.TypeApplicationReferred: func() any { return new(events.ApplicationReferred) },
	events.TypeUnderwritingTaken:   func() any { return new(events.UnderwritingTaken) },
	events.TypeUnderwritingDecided: func() any { return new(events.UnderwritingDecided) },
	events.TypeOfferClicked:        func() any { return new(events.OfferClicked) },
}

// FuzzEventDecoders decodes arbitrary bytes as every v1 event. Whatever the input: no panic,
// and what decodes re-encodes to a fixed point (decode, encode, decode, encode gives the same
// bytes), so a consumer never reads back something other than what was published. The seeds
// are the golden samples (added here) and broken variants (testdata/fuzz/FuzzEventDecoders).
func FuzzEventDecoders(f *testing.F) {
	samples, _ := filepath.Glob("../testdata/events/*.json")
	for _, p := range samples {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for typ, fresh := range decoders {
			v := fresh()
			if json.Unmarshal(data, v) != nil {
				continue
			}
			once, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: re-encode: %v", typ, err)
			}
			w := fresh()
			if err := json.Unmarshal(once, w); err != nil {
				t.Fatalf("%s: own encoding does not decode: %v\n%s", typ, err, once)
			}
			twice, _ := json.Marshal(w)
			if !bytes.Equal(once, twice) {
				t.Fatalf("%s: encoding is not stable:\n%s\n%s", typ, once, twice)
			}
		}
	})
}
