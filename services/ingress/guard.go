package ingress

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// allowlist admits requests only from the configured networks (Yandex's published ranges).
// An empty list admits everyone. The peer address is the TCP one: a proxy in front of ingress
// must be one of the allowed networks itself.
type allowlist []netip.Prefix

// parseAllowlist reads "10.0.0.0/8, 2a02:6b8::/32" (a bare address means that host alone).
func parseAllowlist(specs []string) (allowlist, error) {
	var l allowlist
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("LOANFLOW_ALLOW_CIDRS: %q is neither a network nor an address", s)
			}
			l = append(l, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("LOANFLOW_ALLOW_CIDRS: %q: %v", s, err)
		}
		l = append(l, p.Masked())
	}
	return l, nil
}

// admits reports whether remoteAddr (host:port, as in http.Request) is inside the list.
func (l allowlist) admits(remoteAddr string) bool {
	if len(l) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowed answers 403 to a peer outside the allowlist, before anything else is read. It guards
// Yandex's API only: proposal links are opened by people from anywhere.
func (s *server) allowed(next http.Handler) http.Handler {
	if len(s.allow) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allow.admits(r.RemoteAddr) {
			s.log.WarnContext(r.Context(), "request from outside the allowlist", "remote", r.RemoteAddr, "correlation_id", correlationID(r.Context()))
			writeError(w, r, s.log, "", &Error{Code: CodeForbidden, Message: msgNotAllowed})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenLimits holds one token bucket per bearer token (by index in the configured list), so
// that one caller's burst cannot starve another's.
type tokenLimits struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	byTok map[int]*rate.Limiter
}

// newTokenLimits returns nil (no limit) when perSecond is zero.
func newTokenLimits(perSecond float64, burst int) *tokenLimits {
	if perSecond <= 0 {
		return nil
	}
	return &tokenLimits{rate: rate.Limit(perSecond), burst: max(burst, 1), byTok: map[int]*rate.Limiter{}}
}

// take spends one request of token i; when none is left it returns how long until one is.
func (t *tokenLimits) take(i int) (ok bool, wait time.Duration) {
	if t == nil {
		return true, 0
	}
	t.mu.Lock()
	l, found := t.byTok[i]
	if !found {
		l = rate.NewLimiter(t.rate, t.burst)
		t.byTok[i] = l
	}
	t.mu.Unlock()
	now := time.Now()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// tooMany is the 429 for a token over its rate, with Retry-After in whole seconds (at least 1).
func tooMany(wait time.Duration) *Error {
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	return &Error{Code: CodeTooMany, Message: msgTooMany, RetryAfter: strconv.Itoa(secs)}
}
