package offerlink

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	key1 = []byte("link-key-one-0123456789")
	key2 = []byte("link-key-two-0123456789")
	now  = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
)

func claims() Claims {
	return Claims{SearchID: "3f1c9a62-5b7e-4d2a-9c1e-0b8f6a4d2e71", OfferID: "cash-standard", Channel: ChannelWeb,
		Target: "https://bank.example/apply?offer=cash-standard", Expires: now.Add(24 * time.Hour).Unix()}
}

func mustSigner(t *testing.T, keys ...[]byte) *Signer {
	t.Helper()
	s, err := NewSigner(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s := mustSigner(t, key1)
	tok, err := s.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(tok, now)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got != claims() {
		t.Errorf("claims %+v, want %+v", got, claims())
	}
	if strings.ContainsAny(tok, "/+=?&#") {
		t.Errorf("token %q is not URL-safe", tok)
	}
}

func TestVerifyRefuses(t *testing.T) {
	s := mustSigner(t, key1)
	tok, _ := s.Sign(claims())
	body, sig := tok[:strings.LastIndexByte(tok, '.')], tok[strings.LastIndexByte(tok, '.')+1:]
	other, _ := mustSigner(t, key2).Sign(claims())
	forged := claims()
	forged.Target = "https://evil.example/"
	forgedTok, _ := mustSigner(t, key2).Sign(forged)
	flip := []byte(body)
	flip[len(flip)-2] ^= 1
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"expired at the second", tok, time.Unix(claims().Expires, 0), ErrExpired},
		{"expired later", tok, now.Add(48 * time.Hour), ErrExpired},
		{"claims altered", string(flip) + "." + sig, now, ErrMalformed},
		{"signed with another key", other, now, ErrMalformed},
		{"another key's claims under our signature", forgedTok[:strings.LastIndexByte(forgedTok, '.')] + "." + sig, now, ErrMalformed},
		{"no signature", body, now, ErrMalformed},
		{"empty signature", body + ".", now, ErrMalformed},
		{"signature not base64", body + ".***", now, ErrMalformed},
		{"other version", "v2" + tok[2:], now, ErrMalformed},
		{"empty", "", now, ErrMalformed},
		{"just the prefix", "v1.", now, ErrMalformed},
		{"too long", tok + strings.Repeat("A", MaxTokenBytes), now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Verify(tt.token, tt.at); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestExpiredReturnsClaims(t *testing.T) {
	s := mustSigner(t, key1)
	tok, _ := s.Sign(claims())
	got, err := s.Verify(tok, now.Add(25*time.Hour))
	if !errors.Is(err, ErrExpired) || got.SearchID != claims().SearchID {
		t.Errorf("Verify = %+v, %v; want the claims and ErrExpired", got, err)
	}
}

func TestKeyRotation(t *testing.T) {
	old := mustSigner(t, key1)
	tok, _ := old.Sign(claims())
	rotated := mustSigner(t, key2, key1)
	if _, err := rotated.Verify(tok, now); err != nil {
		t.Errorf("a link signed with the previous key: %v", err)
	}
	fresh, _ := rotated.Sign(claims())
	if _, err := old.Verify(fresh, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("the new key signs: old signer says %v, want ErrMalformed", err)
	}
}

func TestSignRefusesIncompleteClaims(t *testing.T) {
	s := mustSigner(t, key1)
	for _, edit := range []func(*Claims){
		func(c *Claims) { c.SearchID = "" },
		func(c *Claims) { c.OfferID = "" },
		func(c *Claims) { c.Channel = "sms" },
		func(c *Claims) { c.Expires = 0 },
	} {
		c := claims()
		edit(&c)
		if _, err := s.Sign(c); err == nil {
			t.Errorf("Sign(%+v) succeeded", c)
		}
	}
}

func TestNewSignerRefusesShortKeys(t *testing.T) {
	if _, err := NewSigner(); err == nil {
		t.Error("no key accepted")
	}
	if _, err := NewSigner(key1, []byte("short")); err == nil {
		t.Error("a short key accepted")
	}
	if got := ParseKeys(" a , ,b,"); len(got) != 2 || string(got[0]) != "a" || string(got[1]) != "b" {
		t.Errorf("ParseKeys = %q", got)
	}
}

func TestWebLink(t *testing.T) {
	if got, want := WebLink("https://api.bank.example/", "v1.abc.def"), "https://api.bank.example/offers/v1.abc.def"; got != want {
		t.Errorf("WebLink = %q, want %q", got, want)
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner(key1)
	tok, _ := s.Sign(claims())
	f.Add(tok)
	f.Add("v1..")
	f.Add("v1.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token, now)
		if err == nil && (c.SearchID == "" || c.OfferID == "") {
			t.Fatalf("accepted %q with incomplete claims %+v", token, c)
		}
		if err == nil && token != tok {
			// Only a token made with the key verifies; the fuzzer cannot forge an HMAC.
			t.Fatalf("accepted a token the signer never made: %q", token)
		}
	})
}
