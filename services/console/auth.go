package console

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/loanflow/loanflow/contracts/events"
)

// Role is what an officer account may do.
type Role string

// Roles: an officer takes and decides cases; an auditor only reads.
const (
	RoleOfficer Role = "officer"
	RoleAuditor Role = "auditor"
)

// account is one console user from configuration.
type account struct {
	Login string
	Role  Role
	hash  []byte
}

// accounts are the configured users by login.
type accounts map[string]account

// parseAccounts reads "login:role:bcrypt-hash" entries, separated by commas or newlines;
// blank lines and lines starting with # are skipped.
func parseAccounts(entries []string) (accounts, error) {
	out := accounts{}
	var errs []error
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		parts := strings.SplitN(e, ":", 3)
		if len(parts) != 3 {
			errs = append(errs, fmt.Errorf("entry %d: want login:role:bcrypt-hash", i+1))
			continue
		}
		login, role, hash := strings.TrimSpace(parts[0]), Role(strings.TrimSpace(parts[1])), []byte(strings.TrimSpace(parts[2]))
		switch {
		case !validLogin(login):
			errs = append(errs, fmt.Errorf("entry %d: a login is 1-64 letters, digits, '.', '_' or '-'", i+1))
		case strings.EqualFold(login, events.DecidedByFallback):
			// The audit and the decided events name the fallback so: an officer of that name
			// would pass for the policy, and the policy for them.
			errs = append(errs, fmt.Errorf("entry %d: the login %s is reserved for the policy's fallback", i+1, events.DecidedByFallback))
		case role != RoleOfficer && role != RoleAuditor:
			errs = append(errs, fmt.Errorf("entry %d (%s): role must be officer or auditor", i+1, login))
		case out[login].Login != "":
			errs = append(errs, fmt.Errorf("entry %d: login %s given twice", i+1, login))
		default:
			if _, err := bcrypt.Cost(hash); err != nil {
				errs = append(errs, fmt.Errorf("entry %d (%s): not a bcrypt hash: %w", i+1, login, err))
				continue
			}
			out[login] = account{Login: login, Role: role, hash: hash}
		}
	}
	return out, errors.Join(errs...)
}

// readAccountsFile reads one entry per line.
func readAccountsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

func validLogin(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// dummyHash is compared against when the login is unknown, so that a wrong login takes as
// long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("loanflow-no-such-user"), bcrypt.DefaultCost)

// authenticate checks a login and password.
func (a accounts) authenticate(login, password string) (account, bool) {
	acc, ok := a[login]
	hash := acc.hash
	if !ok {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return account{}, false
	}
	return acc, true
}

// HashPassword returns the bcrypt hash of password for LOANFLOW_CONSOLE_USERS.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("a password has at least 8 characters")
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(b), err
}

// session is what the signed session cookie carries.
type session struct {
	ID      string    `json:"sid"`
	Login   string    `json:"login"`
	Expires time.Time `json:"exp"`
}

// sessions issues and checks signed session cookies (HMAC-SHA256 with a key from
// configuration), HttpOnly, SameSite=Strict, Secure and __Host- prefixed unless configured
// otherwise (LOANFLOW_CONSOLE_INSECURE_COOKIES). The cookie holds no role: the
// role is looked up in the configured accounts on every request, so a removed account is
// signed out at once. Signing out revokes the session id in the console_revocations bucket,
// which every request consults, so that the cookie is refused by every replica and after a
// restart; this process also remembers the revocations it has seen.
type sessions struct {
	macKey, csrfKey []byte
	ttl             time.Duration
	secure          bool
	users           accounts
	store           *revocations

	mu      sync.Mutex
	revoked map[string]time.Time
}

// errNoSession is a request without a valid session: no cookie, a bad or expired one, one
// signed out, or one of a removed account.
var errNoSession = errors.New("no valid session")

func newSessions(key []byte, ttl time.Duration, secure bool, users accounts, store *revocations) *sessions {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return &sessions{macKey: derive("loanflow-console-session"), csrfKey: derive("loanflow-console-csrf"),
		ttl: ttl, secure: secure, users: users, store: store, revoked: map[string]time.Time{}}
}

// cookieName is the session cookie's; the __Host- prefix makes the browser insist on Secure,
// Path=/ and no Domain.
func (s *sessions) cookieName() string {
	if s.secure {
		return "__Host-lf_session"
	}
	return "lf_session"
}

func (s *sessions) sign(b []byte) string {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue starts a session for acc and sets its cookie.
func (s *sessions) issue(w http.ResponseWriter, acc account, now time.Time) session {
	sess := session{ID: randomToken(), Login: acc.Login, Expires: now.Add(s.ttl).UTC()}
	b, _ := json.Marshal(sess)
	payload := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: payload + "." + s.sign([]byte(payload)), Path: "/",
		Expires: sess.Expires, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
	})
	return sess
}

// current returns the request's valid session and its account: errNoSession without one,
// another error when whether it was signed out cannot be told (the bucket unreachable).
func (s *sessions) current(r *http.Request, now time.Time) (session, account, error) {
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return session{}, account{}, errNoSession
	}
	payload, mac, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.sign([]byte(payload)))) {
		return session{}, account{}, errNoSession
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return session{}, account{}, errNoSession
	}
	var sess session
	if json.Unmarshal(b, &sess) != nil || sess.ID == "" || !now.Before(sess.Expires) || s.isRevoked(sess.ID, now) {
		return session{}, account{}, errNoSession
	}
	acc, ok := s.users[sess.Login]
	if !ok {
		return session{}, account{}, errNoSession
	}
	if s.store != nil {
		revoked, err := s.store.revoked(r.Context(), sess.ID)
		if err != nil {
			return session{}, account{}, err
		}
		if revoked {
			s.remember(sess)
			return session{}, account{}, errNoSession
		}
	}
	return sess, acc, nil
}

// end revokes the session, where every replica sees it, and clears its cookie. When the
// revocation cannot be recorded the cookie is left as it is and the error returned: a
// sign-out either holds everywhere or visibly fails.
func (s *sessions) end(ctx context.Context, w http.ResponseWriter, sess session, now time.Time) error {
	if s.store != nil {
		if err := s.store.revoke(ctx, sess.ID, sess.Expires, now); err != nil {
			return err
		}
	}
	s.remember(sess)
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	return nil
}

// remember keeps a revocation in this process until its session expires.
func (s *sessions) remember(sess session) {
	s.mu.Lock()
	s.revoked[sess.ID] = sess.Expires
	s.mu.Unlock()
}

func (s *sessions) isRevoked(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.revoked {
		if now.After(exp) {
			delete(s.revoked, k)
		}
	}
	_, ok := s.revoked[id]
	return ok
}

// csrfToken is the session's anti-forgery token, put in every form.
func (s *sessions) csrfToken(sess session) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(sess.ID))
	return hex.EncodeToString(m.Sum(nil))
}

// validCSRF checks a form's token against the session's.
func (s *sessions) validCSRF(sess session, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(s.csrfToken(sess)))
}

// signinCookie names the pre-session anti-forgery cookie of the sign-in form (double submit).
const signinCookie = "lf_signin"

// signinToken returns the sign-in form's token, setting its cookie when the request has none.
func (s *sessions) signinToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(signinCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: tok, Path: "/", MaxAge: 3600,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	return tok
}

// validSigninToken checks the sign-in form's token against its cookie.
func validSigninToken(r *http.Request, token string) bool {
	c, err := r.Cookie(signinCookie)
	return err == nil && len(c.Value) >= 32 && subtle.ConstantTimeCompare([]byte(c.Value), []byte(token)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails: crypto/rand panics rather than return short
	return base64.RawURLEncoding.EncodeToString(b)
}
