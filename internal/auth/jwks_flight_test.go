package auth

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// hangingJWKS is a JWKS endpoint that serves doc to its first request and
// holds every later one until release is called (or the client gives up),
// then serves next.
type hangingJWKS struct {
	*httptest.Server
	hits    atomic.Int64
	release func()
}

func newHangingJWKS(t *testing.T, doc, next []byte) *hangingJWKS {
	h := &hangingJWKS{}
	gate := make(chan struct{})
	var once sync.Once
	h.release = func() { once.Do(func() { close(gate) }) }
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.hits.Add(1) == 1 {
			w.Write(doc)
			return
		}
		select {
		case <-gate:
			w.Write(next)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(h.Close)
	t.Cleanup(h.release) // runs first: Close waits for the held handlers
	return h
}

// Many tokens naming a kid the source does not know are refused at once
// while the fetch they caused hangs, cause that one fetch only, and the kid
// verifies once the fetch brought it.
func TestJWKSSourceUnknownKidFetchesOnceInBackground(t *testing.T) {
	k := newTestKeys(t)
	srv := newHangingJWKS(t, jwksJSON(t, jwkOf(t, k.ed.Public(), "old")),
		jwksJSON(t, jwkOf(t, k.ed.Public(), "old"), jwkOf(t, k.ed.Public(), "new")))
	// MinInterval 1ns: only the single flight keeps the count at one.
	src, err := NewJWKSSource(t.Context(), srv.URL, JWKSOptions{Client: srv.Client(), MinInterval: time.Nanosecond, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	v := newVerifier(t, src)
	tok := sign(t, jwt.SigningMethodEdDSA, k.ed, "new", claims())
	if _, err := v.Verify(tok); Reason(err) != "no_key" {
		t.Fatalf("first token of an unknown kid: Reason = %s, want no_key", Reason(err))
	}
	eventually(t, "the refresh to reach the endpoint", func() bool { return srv.hits.Load() >= 2 })

	// 8 callers × 50 tokens, all while the endpoint holds the fetch.
	refused := make(chan error, 400)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, err := v.Verify(tok)
				refused <- err
			}
		})
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		srv.release()
		t.Fatal("Verify waited for the hanging JWKS endpoint")
	}
	close(refused)
	for err := range refused {
		if Reason(err) != "no_key" {
			t.Fatalf("token of an unknown kid during the fetch: Reason = %s, want no_key", Reason(err))
		}
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("%d requests while the fetch hangs, want 2 (the first document and one refresh)", n)
	}
	srv.release()
	eventually(t, "the new kid to verify", func() bool { _, err := v.Verify(tok); return err == nil })
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("%d requests in all, want 2: the fetch that brought the kid answers every token that asked for it", n)
	}
}

// A kid asked for just after a fetch waits for MinInterval from the end of
// that fetch, then is fetched without any further token asking.
func TestJWKSSourceDefersKidFetchToMinInterval(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, k.ed.Public(), "a")))
	src, err := NewJWKSSource(t.Context(), srv.URL, JWKSOptions{Client: srv.Client(), MinInterval: 50 * time.Millisecond, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srv.set(jwksJSON(t, jwkOf(t, k.ed.Public(), "a"), jwkOf(t, k.ed.Public(), "b")), false)
	if src.Keys("b").hasKID("b") {
		t.Fatal("Keys waited for a fetch")
	}
	eventually(t, "kid b fetched after MinInterval", func() bool { return src.Keys("").hasKID("b") })
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// The fetch follows a redirect within the URL's scheme and host, and no
// other: the target of a refused redirect never sees a request.
func TestJWKSSourceRedirects(t *testing.T) {
	k := newTestKeys(t)
	doc := jwksJSON(t, jwkOf(t, k.ed.Public(), "a"))
	otherHost := newJWKSServer(t, doc) // https on another port: another host
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		plainHits.Add(1)
		w.Write(doc)
	}))
	t.Cleanup(plain.Close)
	self := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks":
			w.Write(doc)
		case "/same":
			http.Redirect(w, r, "/jwks", http.StatusFound)
		case "/host":
			http.Redirect(w, r, otherHost.URL+"/jwks", http.StatusFound)
		case "/scheme":
			http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	t.Cleanup(self.Close)
	open := func(path string) error {
		src, err := NewJWKSSource(t.Context(), self.URL+path, JWKSOptions{Client: self.Client()})
		if err == nil {
			src.Close()
		}
		return err
	}
	if err := open("/same"); err != nil {
		t.Errorf("redirect on the same host: %v", err)
	}
	for _, path := range []string{"/host", "/scheme", "/loop"} {
		err := open(path)
		if err == nil {
			t.Errorf("%s: redirect followed", path)
			continue
		}
		if want := "refused"; path != "/loop" && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not say the redirect was refused", path, err)
		}
	}
	if n := otherHost.hits.Load() + plainHits.Load(); n != 0 {
		t.Errorf("the targets of refused redirects got %s requests", strconv.FormatInt(n, 10))
	}
}
