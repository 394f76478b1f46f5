package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

var testSecret = []byte("a test secret of at least thirty-two bytes")

// authNode starts a node that requires HMAC tokens.
func authNode(t testing.TB, edit func(*config.Serve)) (*server.Server, *auth.Signer) {
	t.Helper()
	srv := startNode(t, nil, func(c *config.Serve) {
		c.Auth.Secret = testSecret
		if edit != nil {
			edit(c)
		}
	})
	signer, err := auth.NewHMACSigner(testSecret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, signer
}

func mint(t testing.TB, s *auth.Signer, ttl time.Duration, perms ...string) string {
	t.Helper()
	tok, err := s.Sign("u-1", perms, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// subscribeUntilExpired subscribes c to new rooms, each answered, until
// one is refused UNAUTHENTICATED: its token's exp has passed (within about
// 5 s, the polls bounded in count).
func subscribeUntilExpired(t *testing.T, c *client.Conn, what string) {
	t.Helper()
	for i := 0; ; i++ {
		if err := c.Subscribe("late", fmt.Sprintf("pool:late%d", i), nil); err != nil {
			t.Fatal(err)
		}
		m := read(t, c)
		if m.Type == wire.TypeError && strings.Contains(string(m.Data), wire.CodeUnauthenticated) {
			return
		}
		if m.Type != wire.TypeResponse || i > 100 {
			t.Fatalf("%s: %+v %s", what, m, m.Data)
		}
		time.Sleep(50 * time.Millisecond) // until the token's exp passes
	}
}

func dialWith(t *testing.T, srv *server.Server, query string, h http.Header) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, wsURL(srv)+query, h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Each token source works: the Authorization header, the token query
// parameter, and an auth request as the first message.
func TestTokenSources(t *testing.T) {
	srv, signer := authNode(t, nil)
	tok := mint(t, signer, time.Hour, "pool:read")
	for name, c := range map[string]*client.Conn{
		"header": dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + tok}}),
		"query":  dialWith(t, srv, "?token="+url.QueryEscape(tok), nil),
	} {
		if res, _ := subscribe(t, c, "pool:p1", nil); res.Status != "subscribed" {
			t.Fatalf("%s: %+v", name, res)
		}
	}
	c := dial(t, srv)
	if err := c.Request(wire.EventAuth, "a1", map[string]string{"token": tok}); err != nil {
		t.Fatal(err)
	}
	m := read(t, c)
	var res wire.AuthResult
	if m.Type != wire.TypeResponse || json.Unmarshal(m.Data, &res) != nil || res.Status != "authenticated" || res.UserID != "u-1" || res.ExpiresAt == "" {
		t.Fatalf("auth response %+v %s", m, m.Data)
	}
	subscribe(t, c, "pool:p2", nil)
}

// Tokens that must not pass close the connection with 1008; a connection
// that sends none within the auth timeout too.
func TestBadTokensAndNoTokenClose1008(t *testing.T) {
	srv, signer := authNode(t, func(c *config.Serve) {
		c.Auth.Timeout = 300 * time.Millisecond
		c.Auth.Audience = "roomcast"
		c.Auth.Issuer = "pools"
	})
	wrong, err := auth.NewHMACSigner([]byte("another secret of at least thirty-two bytes"), auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"expired":       handMade(t, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "aud": "roomcast"}),
		"without exp":   handMade(t, jwt.MapClaims{"aud": "roomcast"}),
		"not yet valid": handMade(t, jwt.MapClaims{"exp": time.Now().Add(2 * time.Hour).Unix(), "nbf": time.Now().Add(time.Hour).Unix(), "aud": "roomcast"}),
		"wrong issuer":  handMade(t, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "aud": "roomcast", "iss": "someone-else"}),
		"no audience":   mint(t, signer, time.Hour, "admin"),
		"wrong secret":  mint(t, wrong, time.Hour, "admin"),
		"garbage":       "not.a.token",
		"alg none":      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTksInBlcm1pc3Npb25zIjpbImFkbWluIl19.",
		"oversized":     strings.Repeat("a", 9<<10),
	} {
		c := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + tok}})
		if got := expectClose(t, c, int(wire.ClosePolicy)); len(got) != 0 {
			t.Errorf("%s: got %d messages before the close", name, len(got))
		}
	}
	silent := dial(t, srv)
	expectClose(t, silent, int(wire.ClosePolicy))

	good := handMade(t, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "aud": "roomcast", "iss": "pools"})
	subscribe(t, dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + good}}), "pool:p1", nil)
}

// A node that verifies RS256 tokens with an RSA public key refuses an HS256
// token whose HMAC key is that public key (key-type confusion).
func TestKeyTypeConfusionIsRefused(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	file := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(file, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startNode(t, nil, func(c *config.Serve) { c.Auth.PublicKeys = config.List{file} })
	claims := jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "permissions": []string{"admin"}}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + forged}}), int(wire.ClosePolicy))
	real, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + real}}), "pool:p1", nil)
}

// handMade signs claims with the test secret: tokens a Signer refuses to
// make (expired, without exp, not yet valid).
func handMade(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	claims["permissions"] = []string{"admin"}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Permissions decide the rooms: admin, K:read, K:read:<id>; default deny.
func TestPermissions(t *testing.T) {
	srv, signer := authNode(t, nil)
	for _, tc := range []struct {
		perms []string
		room  string
		ok    bool
	}{
		{[]string{"admin"}, "workflow:w1", true},
		{[]string{"pool:read"}, "pool:p1", true},
		{[]string{"pool:read"}, "workflow:w1", false},
		{[]string{"pool:read:p1"}, "pool:p1", true},
		{[]string{"pool:read:p1"}, "pool:p10", false},
		{nil, "pool:p1", false},
	} {
		c := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + mint(t, signer, time.Hour, tc.perms...)}})
		if tc.ok {
			subscribe(t, c, tc.room, nil)
			continue
		}
		if err := c.Subscribe("s", tc.room, nil); err != nil {
			t.Fatal(err)
		}
		expectError(t, c, "s", wire.CodeForbidden)
	}
}

// A token refreshed before it expires keeps the connection; one that
// expires without refresh closes it with 4001; a refresh that no longer
// allows a room leaves it with an error.
func TestRefreshAndExpiry(t *testing.T) {
	srv, signer := authNode(t, nil)
	short := mint(t, signer, time.Second, "pool:read")
	c := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + short}})
	expiring := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + short}})
	subscribe(t, c, "pool:p1", nil)
	if err := c.Request(wire.EventAuth, "r", map[string]string{"token": mint(t, signer, time.Hour, "workflow:read")}); err != nil {
		t.Fatal(err)
	}
	var sawResponse, sawDrop bool
	for !(sawResponse && sawDrop) {
		m := read(t, c)
		switch {
		case m.Type == wire.TypeResponse && m.ID == "r":
			sawResponse = true
		case m.Type == wire.TypeError && m.ID == "" && m.Room == "pool:p1" && strings.Contains(string(m.Data), wire.CodeForbidden):
			sawDrop = true
		default:
			t.Fatalf("after the refresh: %+v %s", m, m.Data)
		}
	}
	// Past its exp, in the grace before 4001, a connection subscribes to
	// nothing new.
	subscribeUntilExpired(t, expiring, "subscribing with a token about to expire")
	// Past the first token's expiry and grace, the refreshed connection is
	// still up.
	time.Sleep(6 * time.Second) // the expiry being tested is a wall-clock time
	if err := c.Send(wire.Message{Type: wire.TypePing, ID: "alive"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypePong {
		t.Fatalf("after the refresh and past the old expiry: %+v", m)
	}
	expectClose(t, expiring, int(wire.CloseTokenExpired))
}

// A token valid for centuries keeps its connection (its expiry once
// overflowed into an immediate 4001); with --jwt-leeway 0 a token a few
// seconds past exp is refused (0 once meant the 5 s default).
func TestExpiryEdges(t *testing.T) {
	srv, _ := authNode(t, func(c *config.Serve) { c.Auth.Leeway = 0 })
	far := handMade(t, jwt.MapClaims{"exp": time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC).Unix()})
	c := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + far}})
	subscribe(t, c, "pool:long", nil)
	if err := c.Send(wire.Message{Type: wire.TypePing, ID: "still"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypePong {
		t.Fatalf("with a far-future token: %+v", m)
	}
	late := handMade(t, jwt.MapClaims{"exp": time.Now().Add(-2 * time.Second).Unix()})
	expectClose(t, dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + late}}), int(wire.ClosePolicy))
}

// A refresh with a valid token for another user is refused with
// FORBIDDEN: the connection keeps its user, its permissions and its
// token's expiry; a refresh for the same user still works.
func TestRefreshForAnotherUserIsRefused(t *testing.T) {
	srv, signer := authNode(t, nil)
	c := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + mint(t, signer, 2*time.Second, "pool:read")}})
	subscribe(t, c, "pool:p1", nil)
	other, err := signer.Sign("u-2", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Request(wire.EventAuth, "r", map[string]string{"token": other}); err != nil {
		t.Fatal(err)
	}
	expectError(t, c, "r", wire.CodeForbidden)
	if err := c.Subscribe("w", "workflow:w1", nil); err != nil {
		t.Fatal(err)
	}
	expectError(t, c, "w", wire.CodeForbidden) // u-2's admin was not taken
	// The first token's expiry still holds: past it, nothing new opens.
	subscribeUntilExpired(t, c, "subscribing after the refused refresh")
	if err := c.Request(wire.EventAuth, "same", map[string]string{"token": mint(t, signer, time.Hour, "pool:read")}); err != nil {
		t.Fatal(err)
	}
	m := read(t, c)
	var res wire.AuthResult
	if m.Type != wire.TypeResponse || m.ID != "same" || json.Unmarshal(m.Data, &res) != nil || res.UserID != "u-1" {
		t.Fatalf("refresh for the same user: %+v %s", m, m.Data)
	}
	subscribe(t, c, "pool:p2", nil)
}
