package conformance_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
)

// testSecret signs the scenarios' tokens; nodes verify with it.
var testSecret = []byte("conformance-secret-of-at-least-32-bytes!")

// mint signs a token for alice, allowed every room, valid for ttl from
// now (negative: expired that long ago).
func mint(t testing.TB, ttl time.Duration) string {
	t.Helper()
	tok, err := sign(ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sign is mint for goroutines other than the test's.
func sign(ttl time.Duration) (string, error) {
	opts := auth.SignerOptions{}
	if ttl <= 0 {
		past := time.Now().Add(ttl - time.Minute)
		opts.Now = func() time.Time { return past }
		ttl = time.Minute
	}
	s, err := auth.NewHMACSigner(testSecret, opts)
	if err != nil {
		return "", err
	}
	return s.Sign("alice", []string{"admin"}, ttl)
}

// tokenServer answers GET /token with a new token of ttl, as an
// application's token endpoint would; served counts the answers.
type tokenServer struct {
	URL    string
	served atomic.Int64
}

func startTokenServer(t testing.TB, ttl time.Duration) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The runner page is served from another origin.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.URL.Path != "/token" {
			http.NotFound(w, r)
			return
		}
		tok, err := sign(ttl)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ts.served.Add(1)
		_, _ = w.Write([]byte(tok))
	}))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/token"
	return ts
}
