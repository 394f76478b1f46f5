package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
)

// hangingJWKSNode is a node whose keys come from a JWKS endpoint that
// serves its first request (the key k1) and holds every later one until
// the test ends: an identity provider that has stopped answering.
type hangingJWKSNode struct {
	srv  *server.Server
	key  *ecdsa.PrivateKey
	hits atomic.Int64 // requests the endpoint received
}

func newHangingJWKSNode(tb testing.TB) *hangingJWKSNode {
	tb.Helper()
	n := &hangingJWKSNode{}
	var err error
	if n.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	pub, err := n.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		tb.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	doc, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64(pub[1:33]), "y": b64(pub[33:]),
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	release := make(chan struct{})
	url, caFile := jwksEndpoint(tb, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.hits.Add(1) == 1 {
			_, _ = w.Write(doc)
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	tb.Cleanup(func() { close(release) }) // before the endpoint's Close, which waits for handlers
	n.srv = startNode(tb, nil, func(c *config.Serve) {
		c.Auth.JWKS = url
		c.Auth.JWKSCA = caFile
	})
	return n
}

// token is an ES256 token signed with the published key under kid.
func (n *hangingJWKSNode) token(tb testing.TB, kid string) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"exp": time.Now().Add(time.Hour).Unix(), "permissions": []string{"pool:read"},
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(n.key)
	if err != nil {
		// Errorf, not Fatal: the flood's goroutines sign too, and only
		// the test's own goroutine may stop it.
		tb.Errorf("sign a token: %v", err)
	}
	return s
}

// connect opens an authenticated connection with token and subscribes,
// and returns how long that took; the connection is closed again.
func (n *hangingJWKSNode) connect(tb testing.TB, token string) time.Duration {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := client.Dial(ctx, wsURL(n.srv), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		tb.Fatalf("dial with a valid token: %v", err)
	}
	defer c.Close()
	subscribe(tb, c, "pool:p1", nil)
	return time.Since(start)
}

// holdFetch sends tokens of unknown kids until one has made the node fetch
// the document again, which the endpoint then holds: the node's first
// document is recent, and the next fetch waits for the minimum interval.
func (n *hangingJWKSNode) holdFetch(tb testing.TB) {
	tb.Helper()
	var f kidFlood
	deadline := time.Now().Add(30 * time.Second)
	for n.hits.Load() < 2 {
		if time.Now().After(deadline) {
			tb.Fatal("no token with an unknown kid made the node fetch its JWKS again")
		}
		f.upgrade(context.Background(), n, n.token(tb, "rnd-"+rand.Text()))
		time.Sleep(50 * time.Millisecond) // a client's pace, not a wait for a condition
	}
}

// kidFlood upgrades with tokens of random kids from several connections
// at once, each closed as soon as the upgrade is done.
type kidFlood struct {
	upgraded, failed atomic.Int64
	wg               sync.WaitGroup
	done             chan struct{} // closed when every worker has ended
}

// startFlood runs workers connections until total upgrades were tried or
// ctx ends; its goroutines end then, and wait waits for them.
func (n *hangingJWKSNode) startFlood(ctx context.Context, tb testing.TB, total, workers int) *kidFlood {
	f := &kidFlood{done: make(chan struct{})}
	var next atomic.Int64
	for range workers {
		f.wg.Go(func() {
			for next.Add(1) <= int64(total) && ctx.Err() == nil {
				f.upgrade(ctx, n, n.token(tb, "rnd-"+rand.Text()))
			}
		})
	}
	go func() { f.wg.Wait(); close(f.done) }()
	return f
}

func (f *kidFlood) upgrade(flood context.Context, n *hangingJWKSNode, token string) {
	ctx, cancel := context.WithTimeout(flood, 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, wsURL(n.srv), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if flood.Err() == nil { // not the flood's own end cutting a dial short
			f.failed.Add(1)
		}
		return
	}
	f.upgraded.Add(1)
	_ = c.Close()
}

func (f *kidFlood) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// Tokens naming random kids while the JWKS endpoint hangs must not lock
// out anyone: each is refused at once (no fetch on the handshake path), so
// handshake slots stay free and valid tokens keep connecting throughout.
func TestValidTokensConnectDuringUnknownKidFlood(t *testing.T) {
	n := newHangingJWKSNode(t)
	valid := n.token(t, "k1")
	n.connect(t, valid)
	n.holdFetch(t)

	start := time.Now()
	f := n.startFlood(t.Context(), t, 2000, 8)
	during := 0
	for !f.finished() {
		if time.Since(start) > 2*time.Minute {
			t.Fatal("the flood of 2,000 upgrades did not end within 2 minutes")
		}
		n.connect(t, valid) // fails the test when the node refuses it
		if !f.finished() {
			during++
		}
	}
	elapsed := time.Since(start)
	if during < 3 {
		t.Errorf("only %d valid connections completed during the flood", during)
	}
	if got := f.failed.Load(); got != 0 {
		t.Errorf("%d of the flood's upgrades were refused: handshake slots ran out", got)
	}
	// One hanging fetch at a time (single flight), the next no sooner than
	// MinInterval after the end of the last: the first document and the
	// held fetch, then at most one per interval.
	if limit := 2 + int64(elapsed/auth.DefaultJWKSMinInterval); n.hits.Load() > limit {
		t.Errorf("the JWKS endpoint got %d requests in %v, want at most %d", n.hits.Load(), elapsed, limit)
	}
	t.Logf("%d valid connections during %d flood upgrades in %v; %d JWKS requests", during, f.upgraded.Load(), elapsed, n.hits.Load())
}

// BenchmarkConnectDuringUnknownKidFlood measures how long a valid token
// takes to connect and subscribe (p50, p99) while 8 connections upgrade
// with random kids against a hanging JWKS endpoint, and without the flood.
func BenchmarkConnectDuringUnknownKidFlood(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := "quiet"
		if flood {
			name = "flood"
		}
		b.Run(name, func(b *testing.B) {
			n := newHangingJWKSNode(b)
			valid := n.token(b, "k1")
			n.connect(b, valid)
			ctx, cancel := context.WithCancel(context.Background())
			var f *kidFlood
			if flood {
				n.holdFetch(b)
				f = n.startFlood(ctx, b, 1_000_000, 8)
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				took = append(took, n.connect(b, valid))
			}
			b.StopTimer()
			cancel()
			if f != nil {
				f.wg.Wait()
				b.ReportMetric(float64(f.upgraded.Load()), "flood-upgrades")
				b.ReportMetric(float64(f.failed.Load()), "flood-refused")
			}
			slices.Sort(took)
			ms := func(q float64) float64 {
				return float64(took[int(q*float64(len(took)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
		})
	}
}
