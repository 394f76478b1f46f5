package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestParseJWKS(t *testing.T) {
	k := newTestKeys(t)
	rsaJWK := jwkOf(t, k.rsa.Public(), "rsa")
	rsaJWK["alg"] = "RS384"
	enc := jwkOf(t, k.p256.Public(), "enc")
	enc["use"] = "enc"
	oct := map[string]any{"kty": "oct", "kid": "oct", "k": b64url(k.secret)}
	offCurve := jwkOf(t, k.p256.Public(), "off")
	offCurve["y"] = offCurve["x"] // almost surely not on the curve
	keys, err := ParseJWKS(jwksJSON(t, rsaJWK, jwkOf(t, k.p384.Public(), "p384"), jwkOf(t, k.ed.Public(), "ed"), enc, oct, offCurve))
	if err != nil {
		t.Fatal(err)
	}
	if keys.Len() != 3 {
		t.Errorf("Len = %d, want 3 (enc, oct and off-curve keys skipped)", keys.Len())
	}
	if got := strings.Join(keys.Algorithms(), ","); got != "ES384,EdDSA,RS384" {
		t.Errorf("Algorithms = %s; the JWK alg must narrow RSA to RS384", got)
	}
	v := newVerifier(t, keys)
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS384, k.rsa, "rsa", claims())); err != nil {
		t.Errorf("RS384: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, "rsa", claims())); Reason(err) != "algorithm" {
		t.Errorf("RS256 with an RS384 JWK: Reason = %s", Reason(err))
	}

	for name, doc := range map[string]string{
		"not JSON":   "{",
		"no keys":    `{"keys":[]}`,
		"only oct":   string(jwksJSON(t, oct)),
		"alg misfit": "", // built below
	} {
		if name == "alg misfit" {
			j := jwkOf(t, k.ed.Public(), "e")
			j["alg"] = "HS256"
			doc = string(jwksJSON(t, j))
		}
		if _, err := ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// jwksServer is a local HTTPS JWKS endpoint whose document and health the
// test changes.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	doc  []byte
	down bool
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write(s.doc)
	}))
	// The untrusted-client case makes the server log a handshake error.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.down = doc, down
}

// eventually waits for cond, failing after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestJWKSSourceRotationOnUnknownKid(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, k.ed.Public(), "old")))
	src, err := NewJWKSSource(t.Context(), srv.URL, JWKSOptions{Client: srv.Client(), MinInterval: time.Nanosecond, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	v := newVerifier(t, src)
	if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, k.ed, "old", claims())); err != nil {
		t.Fatal(err)
	}
	// The provider rotates to a new key; the first token naming it is
	// refused at once (no fetch on the caller's path) and starts a fetch in
	// the background, after which the kid verifies.
	srv.set(jwksJSON(t, jwkOf(t, k.p256.Public(), "new")), false)
	tok := sign(t, jwt.SigningMethodES256, k.p256, "new", claims())
	if _, err := v.Verify(tok); Reason(err) != "algorithm" {
		t.Fatalf("first token of the rotated key: Reason = %s, want algorithm (the cached keys are EdDSA only)", Reason(err))
	}
	eventually(t, "the rotated key to verify", func() bool { _, err := v.Verify(tok); return err == nil })
	if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, k.ed, "old", claims())); Reason(err) != "algorithm" {
		t.Errorf("retired key: Reason = %s, want algorithm (EdDSA no longer configured)", Reason(err))
	}
}

func TestJWKSSourceRateLimitsUnknownKids(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, k.ed.Public(), "a")))
	src, err := NewJWKSSource(t.Context(), srv.URL, JWKSOptions{Client: srv.Client(), MinInterval: time.Hour, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	v := newVerifier(t, src)
	for i := range 20 {
		tok := sign(t, jwt.SigningMethodEdDSA, k.ed, "random-"+string(rune('a'+i)), claims())
		if _, err := v.Verify(tok); Reason(err) != "no_key" {
			t.Fatalf("Reason = %s, want no_key", Reason(err))
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("%d fetches, want 1: unknown kids within MinInterval must not fetch", n)
	}
}

func TestJWKSSourceKeepsKeysWhenDown(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, k.ed.Public(), "a")))
	errs := make(chan error, 100)
	src, err := NewJWKSSource(t.Context(), srv.URL, JWKSOptions{
		Client: srv.Client(), Refresh: time.Millisecond, MinInterval: time.Nanosecond,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srv.set(nil, true)
	// Wait for two failed refreshes: the background loop has certainly run
	// against the dead endpoint.
	for range 2 {
		select {
		case err := <-errs:
			if !strings.Contains(err.Error(), "503") {
				t.Errorf("refresh error %q does not give the status", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no refresh failure reported")
		}
	}
	v := newVerifier(t, src)
	if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, k.ed, "a", claims())); err != nil {
		t.Errorf("cached key after outage: %v", err)
	}
	// An unknown kid during the outage is refused; the fetch it asks for
	// in the background fails like the others and leaves the cached keys.
	if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, k.ed, "b", claims())); Reason(err) != "no_key" {
		t.Errorf("unknown kid during outage: Reason = %s", Reason(err))
	}
	if src.Keys("").Len() != 1 {
		t.Error("cached keys lost")
	}
}

func TestJWKSSourcePeriodicRefresh(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, k.ed.Public(), "a")))
	src, err := NewJWKSSource(t.Context(), srv.URL, JWKSOptions{Client: srv.Client(), Refresh: time.Millisecond, MinInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv.set(jwksJSON(t, jwkOf(t, k.ed.Public(), "a"), jwkOf(t, k.p256.Public(), "b")), false)
	// Keys("") never fetches: only the background loop can make b appear.
	eventually(t, "kid b from the periodic refresh", func() bool { return src.Keys("").hasKID("b") })
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSSourceStopsWithContext(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, k.ed.Public(), "a")))
	ctx, cancel := context.WithCancel(t.Context())
	src, err := NewJWKSSource(ctx, srv.URL, JWKSOptions{Client: srv.Client(), Refresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-src.done:
	case <-time.After(10 * time.Second):
		t.Fatal("refresh loop still running after its context ended")
	}
}

func TestJWKSSourceRefuses(t *testing.T) {
	k := newTestKeys(t)
	good := jwksJSON(t, jwkOf(t, k.ed.Public(), "a"))
	srv := newJWKSServer(t, good)
	ctx := t.Context()
	if _, err := NewJWKSSource(ctx, strings.Replace(srv.URL, "https", "http", 1), JWKSOptions{Client: srv.Client()}); err == nil {
		t.Error("http URL accepted")
	}
	if _, err := NewJWKSSource(ctx, srv.URL, JWKSOptions{}); err == nil {
		t.Error("nil client accepted")
	}
	// The default client does not trust the test server's certificate.
	if _, err := NewJWKSSource(ctx, srv.URL, JWKSOptions{Client: &http.Client{}}); err == nil {
		t.Error("untrusted certificate accepted")
	}
	if _, err := NewJWKSSource(ctx, srv.URL, JWKSOptions{Client: srv.Client(), MaxSize: int64(len(good) - 1)}); err == nil {
		t.Error("oversized document accepted")
	}
	srv.set(nil, true)
	if _, err := NewJWKSSource(ctx, srv.URL, JWKSOptions{Client: srv.Client()}); err == nil {
		t.Error("start with the endpoint down succeeded")
	}
	// An EC key on the wrong curve for its crv is refused.
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	j := jwkOf(t, p256.Public(), "x")
	j["crv"] = "P-384"
	if _, err := ParseJWKS(jwksJSON(t, j)); err == nil {
		t.Error("P-256 coordinates under crv P-384 accepted")
	}
}
