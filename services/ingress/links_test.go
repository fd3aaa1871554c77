package ingress_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/offerlink"
	"github.com/loanflow/loanflow/services/ingress"
)

const linkKey = "ingress-test-link-key-0123"

// noRedirect is a client that shows a redirect instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) origin() string {
	return strings.TrimSuffix(e.base, "/integrations/api/banking/loan_approval")
}

func sign(t *testing.T, c offerlink.Claims, key string) string {
	t.Helper()
	s, err := offerlink.NewSigner([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// clicks returns the loan.offer.clicked.v1 events in the stream.
func clicks(t *testing.T, js jetstream.JetStream) []events.OfferClicked {
	t.Helper()
	cons, err := js.OrderedConsumer(context.Background(), topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TypeOfferClicked}})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.OfferClicked
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		var c events.OfferClicked
		if err := json.Unmarshal(m.Data(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func TestProposalLinks(t *testing.T) {
	e := start(t, time.Second, func(c *ingress.Config) { c.LinkKeys = "new-key-0123456789abc," + linkKey })
	claims := offerlink.Claims{SearchID: "3f1c9a62-5b7e-4d2a-9c1e-0b8f6a4d2e71", OfferID: "cash-standard", Channel: offerlink.ChannelWeb,
		Target: "https://bank.example/apply?search_id=3f1c9a62&offer=cash-standard", Expires: time.Now().Add(time.Hour).Unix()}
	good := sign(t, claims, linkKey) // signed with the previous key: rotation keeps it valid

	resp, _ := get(t, e.origin()+offerlink.Path+good)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != claims.Target {
		t.Fatalf("valid link: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), claims.Target)
	}
	// Under the base path too, and a second click on the same offer is one event.
	if resp, _ := get(t, e.origin()+"/integrations"+offerlink.Path+good); resp.StatusCode != http.StatusFound {
		t.Errorf("under the base path: %d", resp.StatusCode)
	}
	other := claims
	other.OfferID = "cash-large"
	if resp, _ := get(t, e.origin()+offerlink.Path+sign(t, other, linkKey)); resp.StatusCode != http.StatusFound {
		t.Errorf("second offer: %d", resp.StatusCode)
	}

	expired := claims
	expired.Expires = time.Now().Add(-time.Second).Unix()
	deep := claims
	deep.Channel, deep.Target = offerlink.ChannelDeep, ""
	elsewhere := claims
	elsewhere.Target = "javascript:alert(1)"
	tampered := []byte(good)
	tampered[10] ^= 2
	for _, tt := range []struct {
		name, token string
		code        int
		page        string
	}{
		{"expired", sign(t, expired, linkKey), http.StatusGone, "Срок действия ссылки истёк"},
		{"tampered", string(tampered), http.StatusBadRequest, "Ссылка недействительна"},
		{"foreign key", sign(t, claims, "someone-elses-key-01234"), http.StatusBadRequest, "Ссылка недействительна"},
		{"an app's token", sign(t, deep, linkKey), http.StatusBadRequest, "Ссылка недействительна"},
		{"not an https form", sign(t, elsewhere, linkKey), http.StatusBadRequest, "Ссылка недействительна"},
		{"garbage", "not-a-token", http.StatusBadRequest, "Ссылка недействительна"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, e.origin()+offerlink.Path+tt.token)
			if resp.StatusCode != tt.code || !strings.Contains(body, tt.page) || resp.Header.Get("Location") != "" {
				t.Errorf("%d %q, want %d with %q and no redirect", resp.StatusCode, body, tt.code, tt.page)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	got := clicks(t, e.js)
	if len(got) != 2 || got[0].OfferID != "cash-standard" || got[1].OfferID != "cash-large" || got[0].SearchID != claims.SearchID || got[0].Channel != "web" {
		t.Errorf("clicks %+v, want cash-standard then cash-large, once each", got)
	}
}

func TestProposalLinksWithoutKeys(t *testing.T) {
	e := start(t, time.Second)
	tok := sign(t, offerlink.Claims{SearchID: "s", OfferID: "o", Channel: "web", Target: "https://bank.example/", Expires: time.Now().Add(time.Hour).Unix()}, linkKey)
	if resp, _ := get(t, e.origin()+offerlink.Path+tok); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no link keys: %d, want 404", resp.StatusCode)
	}
}
