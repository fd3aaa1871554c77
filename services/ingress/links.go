package ingress

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/offerlink"
)

// Proposal links: GET /offers/{token}. Offer assembly signs a token into every offer's
// propousal_link.link; a user who follows it from Yandex lands here. A genuine, unexpired token
// is recorded (loan.offer.clicked.v1, which the audit keeps) and redirected with 302 to the
// bank's application form with the offer preselected; an expired one gets a 410 page, anything
// else a 400 page, and nothing else happens. The route is outside the bearer token and the
// CIDR allowlist: users' browsers follow it, not Yandex.

// linkPage is the page shown for a link that cannot be followed, in Russian and English.
var linkPage = template.Must(template.New("link").Parse(`<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}p.en{color:#666}</style>
</head><body>
<h1>{{.Title}}</h1>
<p>{{.Ru}}</p>
<p class="en" lang="en">{{.En}}</p>
</body></html>
`))

type linkPageData struct{ Title, Ru, En string }

var (
	pageExpired = linkPageData{
		Title: "Срок действия ссылки истёк",
		Ru:    "Это предложение больше не действует. Повторите поиск в Яндексе, чтобы получить актуальные предложения банка.",
		En:    "This offer has expired. Search again on Yandex to see the bank's current offers.",
	}
	pageInvalid = linkPageData{
		Title: "Ссылка недействительна",
		Ru:    "Ссылка повреждена или неполна. Откройте предложение заново из результатов поиска Яндекса.",
		En:    "This link is damaged or incomplete. Open the offer again from Yandex's search results.",
	}
)

// followLink serves GET /offers/{token}.
func (s *server) followLink(w http.ResponseWriter, r *http.Request) {
	if s.links == nil {
		s.linkPage(w, http.StatusNotFound, pageInvalid)
		return
	}
	c, err := s.links.Verify(chi.URLParam(r, "token"), time.Now())
	if err == nil {
		if u, perr := url.Parse(c.Target); c.Channel != offerlink.ChannelWeb || perr != nil || u.Scheme != "https" || u.Host == "" {
			err = offerlink.ErrMalformed // an app's token, or one without a form to go to
		}
	}
	switch {
	case errors.Is(err, offerlink.ErrExpired):
		s.log.Info("expired proposal link", "search_id", c.SearchID, "offer_id", c.OfferID, "correlation_id", correlationID(r.Context()))
		s.linkPage(w, http.StatusGone, pageExpired)
		return
	case err != nil:
		s.log.Warn("refused a proposal link that is not genuine", "correlation_id", correlationID(r.Context()))
		s.linkPage(w, http.StatusBadRequest, pageInvalid)
		return
	}
	// The user is sent on even when the click cannot be recorded: losing the customer to a
	// NATS outage helps nobody. The failure is logged for operators.
	if err := s.recordClick(r.Context(), c); err != nil {
		s.log.Error("click not recorded", "search_id", c.SearchID, "offer_id", c.OfferID,
			"correlation_id", correlationID(r.Context()), "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, c.Target, http.StatusFound)
}

// recordClick publishes loan.offer.clicked.v1. Each offer's click is its own event: the
// deduplication id names the offer, so that a double click within JetStream's window is
// recorded once and clicks on two offers twice.
func (s *server) recordClick(ctx context.Context, c offerlink.Claims) error {
	ctx, cancel := context.WithTimeout(ctx, s.natsTimeout)
	defer cancel()
	msg, err := bus.NewEvent(events.TypeOfferClicked, c.SearchID, bus.Trace{CorrelationID: correlationID(ctx), TraceParent: traceParent(ctx)},
		events.OfferClicked{SearchID: c.SearchID, OfferID: c.OfferID, Channel: c.Channel, ExpiresAt: c.ExpiresAt(), ClickedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	msg.Metadata.Set(events.HeaderMsgID, events.MsgID(c.SearchID, events.TypeOfferClicked)+":"+c.OfferID)
	msg.SetContext(ctx)
	return s.pub.Publish(events.TypeOfferClicked, msg)
}

func (s *server) linkPage(w http.ResponseWriter, code int, page linkPageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := linkPage.Execute(w, page); err != nil {
		s.log.Warn("write link page", "err", err)
	}
}
