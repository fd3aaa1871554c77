package ingress

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/loanflow/loanflow/contracts/decisions"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/offerlink"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/pkg/tracing"
	"github.com/loanflow/loanflow/services/ingress/internal/intake"
)

// server answers Yandex's calls.
type server struct {
	log        *slog.Logger
	store      *store
	watch      *watcher
	pub        *bus.Publisher
	hasher     *pseudonym.Hasher
	tokens     [][sha256.Size]byte
	budget     time.Duration
	retryAfter string
	maxBody    int64
	// republishWithin is how old a pending application may be for a repeat of it to publish
	// its event again: inside JetStream's duplicate window the repeat cannot double it.
	republishWithin time.Duration
	metrics         *httpMetrics
	// natsTimeout bounds the NATS calls of one request; connected says whether NATS is
	// reachable at all, so that an outage is answered at once.
	natsTimeout time.Duration
	connected   func() bool
	// allow admits Yandex's networks (empty: everyone); limits rations each token (nil: none).
	allow  allowlist
	limits *tokenLimits
	// links verifies proposal-link tokens; nil when no link keys are configured.
	links *offerlink.Signer
	// admit holds one slot per application being recorded and waited for; nil admits all.
	admit chan struct{}
}

// errNATSDown is the internal cause of the 500 answered while NATS is unreachable.
var errNATSDown = errors.New("nats unreachable")

func (s *server) routes(base string) http.Handler {
	r := chi.NewRouter()
	r.Use(s.correlate, s.recoverer, s.accessLog)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, "", &Error{Code: CodeNotFound, Message: msgNoRoute})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, "", &Error{Code: CodeNotAcceptable, Message: msgMethod})
	})
	base = strings.TrimSuffix(base, "/")
	r.Group(func(r chi.Router) {
		r.Use(s.allowed)
		r.Post(base+partnerapi.Path, s.loanApproval)
		r.Get(base+partnerapi.Path+"/{search_id}", s.pollByGet)
	})
	// At the root, and under the base path for a proxy that only forwards that.
	r.Get(offerlink.Path+"{token}", s.followLink)
	if base != "" {
		r.Get(base+offerlink.Path+"{token}", s.followLink)
	}
	return r
}

// loanApproval serves both shapes Yandex posts: an application and a poll.
func (s *server) loanApproval(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	authErr := s.authorize(r)
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if authErr != nil {
		writeError(w, r, s.log, peekSearchID(body), authErr)
		return
	}
	if readErr != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(readErr, &tooLarge) {
			writeError(w, r, s.log, "", &Error{Code: CodeTooLarge, Message: msgTooLarge + ": " + strconv.FormatInt(s.maxBody, 10) + " байт"})
			return
		}
		writeError(w, r, s.log, "", &Error{Code: CodeInvalid, Message: "Не удалось прочитать тело запроса"})
		return
	}
	req, err := intake.Parse(body)
	if err != nil {
		s.invalid(w, r, err)
		return
	}
	if req.Poll != nil {
		s.answer(w, r, req.Poll.SearchID, start.Add(s.budget), nil)
		return
	}
	// Past capacity every waiting request slows all the others until NATS calls time out:
	// shed new applications at once instead, with nothing recorded, so Yandex repeats later.
	if s.admit != nil {
		select {
		case s.admit <- struct{}{}:
			defer func() { <-s.admit }()
		default:
			writeError(w, r, s.log, req.Application.SearchID, &Error{Code: CodeTooMany, Message: msgOverloaded, RetryAfter: retryAfterIE})
			return
		}
	}
	s.apply(w, r, req.Application, start.Add(s.budget))
}

// invalid answers 400 for an *intake.Error.
func (s *server) invalid(w http.ResponseWriter, r *http.Request, err error) {
	var bad *intake.Error
	if errors.As(err, &bad) {
		err = &Error{Code: CodeInvalid, SearchID: bad.SearchID, Message: bad.Message(), Properties: bad.Properties()}
	}
	writeError(w, r, s.log, "", err)
}

// pollByGet is our GET extension: GET {base}/api/banking/loan_approval/{search_id}.
func (s *server) pollByGet(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	searchID := chi.URLParam(r, "search_id")
	if err := s.authorize(r); err != nil {
		echo := ""
		if intake.ValidSearchID(searchID) {
			echo = searchID // only an id that could be one is echoed back
		}
		writeError(w, r, s.log, echo, err)
		return
	}
	if !intake.ValidSearchID(searchID) {
		// No application can have such an id: the resource does not exist.
		writeError(w, r, s.log, "", &Error{Code: CodeNotFound, Message: msgNotFound})
		return
	}
	s.answer(w, r, searchID, start.Add(s.budget), nil)
}

// apply records a new application and publishes it once, or recognises a repeat.
func (s *server) apply(w http.ResponseWriter, r *http.Request, app *partnerapi.Application, deadline time.Time) {
	if !s.connected() {
		writeError(w, r, s.log, app.SearchID, errNATSDown)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.natsTimeout+time.Until(deadline))
	defer cancel()
	fp := intake.Fingerprint(s.hasher, app)
	now := time.Now().UTC()
	rec := decisions.Record{
		SearchID: app.SearchID, Status: decisions.StatusPending, Fingerprint: fp,
		CorrelationID: correlationID(ctx), CreatedAt: now, UpdatedAt: now,
	}
	created, rev, existing, err := s.store.create(ctx, rec)
	if err != nil {
		writeError(w, r, s.log, app.SearchID, err)
		return
	}
	switch {
	case created:
		s.store.cache.forget(app.SearchID)
		if err := s.publish(ctx, app, fp, now); err != nil {
			if rbErr := s.store.rollback(context.WithoutCancel(ctx), app.SearchID, rev); rbErr != nil {
				s.log.Error("rollback of unpublished application failed", "search_id", app.SearchID, "correlation_id", correlationID(ctx), "err", rbErr)
			}
			writeError(w, r, s.log, app.SearchID, err)
			return
		}
	case existing.Fingerprint != "" && existing.Fingerprint != fp:
		writeError(w, r, s.log, app.SearchID, &Error{Code: CodeInvalid, Message: msgConflict, Properties: []string{"search_id"}})
		return
	case existing.Status == decisions.StatusPending && time.Since(existing.CreatedAt) < s.republishWithin:
		// The first request may have died between recording and publishing; publishing again
		// is free inside the duplicate window, where JetStream drops the copy.
		if err := s.publish(ctx, app, fp, existing.CreatedAt); err != nil {
			writeError(w, r, s.log, app.SearchID, err)
			return
		}
	}
	s.answer(w, r, app.SearchID, deadline, &existing) // what the bucket held a moment ago
}

func (s *server) publish(ctx context.Context, app *partnerapi.Application, fp string, receivedAt time.Time) error {
	ev := events.ApplicationReceived{
		SearchID:    app.SearchID,
		ProductType: app.ProductType,
		PhoneHash:   s.hasher.Phone(app.PhoneNumber),
		PhoneMask:   pseudonym.Mask(app.PhoneNumber),
		Amount:      app.Amount,
		Term:        app.Term,
		Fingerprint: fp,
		ReceivedAt:  receivedAt,
	}
	msg, err := bus.NewEvent(events.TypeApplicationReceived, app.SearchID, bus.Trace{CorrelationID: correlationID(ctx), TraceParent: traceParent(ctx)}, ev)
	if err != nil {
		return err
	}
	msg.SetContext(ctx)
	// While a stream elects a new leader (a node lost) nobody answers the publish for a few
	// seconds; the message id makes a repeat harmless, so try again until the request's
	// NATS budget runs out.
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, 500*time.Millisecond) {
		err := s.pub.Publish(events.TypeApplicationReceived, msg)
		if err == nil || !(errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// answer waits until the application is final or the deadline passes, then answers. A final
// record the watcher has seen answers at once (final never changes); otherwise the bucket is
// read, except first when the caller has just read or written the record (known).
func (s *server) answer(w http.ResponseWriter, r *http.Request, searchID string, deadline time.Time, known *decisions.Record) {
	if !s.connected() {
		// Answer what is known; what is not cannot be answered now.
		if rec, ok := s.store.cache.get(searchID); ok {
			s.render(w, r, rec)
			return
		}
		writeError(w, r, s.log, searchID, errNATSDown)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.natsTimeout+time.Until(deadline))
	defer cancel()
	wake, cancel := s.watch.subscribe(searchID)
	defer cancel()
	var timer *time.Timer
	for {
		// The cache is read after subscribing: a final record seen since is there, and one
		// seen later wakes the wait. A follower may still serve the pending record after the
		// watcher (fed by the leader) has seen the final one, so the cache goes first.
		rec, ok := s.store.cache.get(searchID)
		switch {
		case ok:
		case known != nil:
			rec, known = *known, nil
		default:
			var err error
			rec, _, err = s.store.get(ctx, searchID)
			switch {
			case errors.Is(err, errNotFound):
				writeError(w, r, s.log, searchID, &Error{Code: CodeNotFound, Message: msgNotFound})
				return
			case err != nil:
				writeError(w, r, s.log, searchID, err)
				return
			}
		}
		wait := time.Until(deadline)
		if rec.Final() || wait <= 0 {
			s.render(w, r, rec)
			return
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
			deadline = time.Time{}
		case <-ctx.Done():
			if r.Context().Err() == nil { // our NATS bound ran out, not the caller
				writeError(w, r, s.log, searchID, ctx.Err())
			}
			return
		}
	}
}

func (s *server) render(w http.ResponseWriter, r *http.Request, rec decisions.Record) {
	switch rec.Status {
	case decisions.StatusDone:
		if rec.Answer == nil {
			writeError(w, r, s.log, rec.SearchID, errors.New("done record without an answer"))
			return
		}
		ans := *rec.Answer
		ans.SearchID, ans.Status = rec.SearchID, partnerapi.StatusDone
		if ans.Decision == partnerapi.DecisionRejected {
			ans.Data = nil
		}
		writeJSON(w, http.StatusOK, ans)
	case decisions.StatusFailed:
		writeError(w, r, s.log, rec.SearchID, &Error{Code: CodeFailed, Message: msgFailed})
	default:
		w.Header().Set("Retry-After", s.retryAfter)
		writeJSON(w, http.StatusOK, partnerapi.PendingAnswer{SearchID: rec.SearchID, Status: partnerapi.StatusPending})
	}
}

// authorize checks the bearer token against every configured token in constant time.
func (s *server) authorize(r *http.Request) error {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return &Error{Code: CodeForbidden, Message: msgNoToken}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	which := -1
	for i, t := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 {
			which = i
		}
	}
	if which < 0 {
		return &Error{Code: CodeForbidden, Message: msgBadToken}
	}
	if ok, wait := s.limits.take(which); !ok {
		return tooMany(wait)
	}
	return nil
}

// peekSearchID reads search_id from a body that will not be processed, so that even a 403
// names it when it can.
func peekSearchID(body []byte) string {
	var v struct {
		SearchID string `json:"search_id"`
	}
	if json.Unmarshal(body, &v) != nil || !intake.ValidSearchID(v.SearchID) {
		return ""
	}
	return v.SearchID
}

type ctxKey int

const (
	keyCorrelation ctxKey = iota
	keyTraceParent
)

var (
	correlationPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	traceParentPattern = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
)

// correlate gives every request a correlation id (the caller's X-Request-Id when usable) and
// a W3C trace context, both carried into the events it causes.
func (s *server) correlate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !correlationPattern.MatchString(id) {
			id = randomHex(16)
		}
		tp := r.Header.Get("traceparent")
		if !traceParentPattern.MatchString(tp) {
			tp = "00-" + randomHex(16) + "-" + randomHex(8) + "-01"
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), keyCorrelation, id)
		ctx = context.WithValue(ctx, keyTraceParent, tp)
		// The request's span continues Yandex's trace (or the one started above); the events
		// it publishes carry it on.
		ctx, span := tracing.Tracer().Start(tracing.Extract(ctx, map[string]string{events.HeaderTraceParent: tp}), r.Method+" loan_approval",
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("loanflow.correlation_id", id)))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func correlationID(ctx context.Context) string { s, _ := ctx.Value(keyCorrelation).(string); return s }
func traceParent(ctx context.Context) string   { s, _ := ctx.Value(keyTraceParent).(string); return s }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// recoverer turns a panic into a logged 500 in the contract's shape.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeError(w, r, s.log, "", errors.New("panic: "+strings.TrimSpace(toString(v))))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func toString(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return "unknown"
}

// accessLog writes one debug line per request; the path and status, never the body.
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		route := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			route = rc.RoutePattern()
		}
		s.metrics.observe(route, ww.Status(), time.Since(start))
		s.log.DebugContext(r.Context(), "http", "method", r.Method, "path", r.URL.Path, "status", ww.Status(),
			"duration_ms", time.Since(start).Milliseconds(), "correlation_id", correlationID(r.Context()))
	})
}
