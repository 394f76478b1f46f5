package server_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// No token reaches the node's log at debug level, from any place a token
// may come: the upgrade's Authorization header, its token query parameter
// at / and at /ws, an auth request, a refresh, a page request's query, a
// refused upgrade (bad origin, bad path), a malformed or expired token.
// Each connection's lifecycle is logged with its id all the same.
func TestTokensStayOutOfTheLog(t *testing.T) {
	var logBuf servertest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := servertest.StartLogged(t, nil, func(c *config.Serve) { c.Auth.Secret = testSecret }, log)
	signer, err := auth.NewHMACSigner(testSecret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A token per place, each of its own user, so that each is distinct.
	var tokens []string
	token := func(place string) string {
		tok, err := signer.Sign("u-"+place, []string{"pool:read"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
		return tok
	}
	expired := func(place string) string {
		tok := handMade(t, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "user_id": "u-" + place})
		tokens = append(tokens, tok)
		return tok
	}
	// Malformed: a signed token whose payload is not JSON.
	header, _, _ := strings.Cut(token("malformed-source"), ".")
	malformed := header + "." + base64.RawURLEncoding.EncodeToString([]byte("{not JSON, but long enough to be recognised}")) + ".c2lnbmF0dXJlIG9mIGEgbWFsZm9ybWVkIHRva2Vu"
	tokens = append(tokens, malformed)
	root := "ws://" + srv.WSAddr() + "/"

	// Upgrades that authenticate: header, query at / and at /ws.
	open := []*client.Conn{
		dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + token("header")}}),
		dialURL(t, root+"?token="+url.QueryEscape(token("query-root"))),
		dialWith(t, srv, "?token="+url.QueryEscape(token("query-ws")), nil),
	}
	for _, c := range open {
		subscribe(t, c, "pool:p1", nil) // answered once the token is taken
	}
	// An auth request, then a refresh: the same user (a refresh may not
	// change it), distinct tokens by their expiry.
	msg := dial(t, srv)
	for i, id := range []string{"auth", "refresh"} {
		tok, err := signer.Sign("u-msg", []string{"pool:read"}, time.Hour+time.Duration(i)*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
		if err := msg.Request(wire.EventAuth, id, map[string]string{"token": tok}); err != nil {
			t.Fatal(err)
		}
		if m := read(t, msg); m.Type != wire.TypeResponse || m.ID != id {
			t.Fatalf("%s: %+v %s", id, m, m.Data)
		}
	}
	open = append(open, msg)
	// Tokens refused: malformed in the header, expired in the query at /
	// and in an auth request.
	expectClose(t, dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + malformed}}), int(wire.ClosePolicy))
	expectClose(t, dialURL(t, root+"?token="+expired("expired-query")), int(wire.ClosePolicy))
	late := dial(t, srv)
	if err := late.Request(wire.EventAuth, "late", map[string]string{"token": expired("expired-auth")}); err != nil {
		t.Fatal(err)
	}
	expectClose(t, late, int(wire.ClosePolicy))
	// Upgrades refused before any connection: a bad origin, a bad path.
	refused := map[string]struct {
		url    string
		header http.Header
	}{
		"bad origin": {srv.WSAddr() + "/ws?token=" + token("origin-query"), http.Header{
			"Origin": {"https://elsewhere.example"}, "Authorization": {"Bearer " + token("origin-header")}}},
		"bad path": {srv.WSAddr() + "/nowhere?token=" + token("bad-path"), nil},
	}
	for name, r := range refused {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, err := client.Dial(ctx, "ws://"+r.url, r.header)
		cancel()
		if err == nil {
			_ = c.Close()
			t.Fatalf("%s: the upgrade was accepted", name)
		}
	}
	// Page requests whose URL carries a token, as a dashboard link may.
	for _, page := range []string{"/", "/index.html"} {
		resp := rawRequest(t, srv, "GET "+page+"?token="+token("page"+page)+" HTTP/1.1\r\nHost: x\r\n\r\n", 0)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s?token=: %s", page, resp.Status)
		}
	}
	for _, c := range open {
		_ = c.Close()
	}

	out := waitForLog(t, &logBuf, map[string]int{
		"connection closed": 7, "page request": 2, "upgrade refused": 2, "token refused": 3, "connection authenticated": 5,
	})
	for _, tok := range tokens {
		if frag, ok := fragmentIn(out, tok, 12); ok {
			t.Fatalf("a token's fragment %q (of %s) is in the log:\n%s", frag, tok, out)
		}
	}
	if strings.Contains(out, string(testSecret)) {
		t.Fatalf("the secret is in the log:\n%s", out)
	}
	if !strings.Contains(out, "conn=1 ") || !strings.Contains(out, "conn=2 ") {
		t.Fatalf("lifecycle lines without their connection ids:\n%s", out)
	}
}

// dialURL connects a client to url, closed on cleanup.
func dialURL(t *testing.T, url string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitForLog waits until the log has at least the given number of lines
// with each message, and returns it. The node logs a page request, a
// refusal or a close a moment after the client saw its outcome.
func waitForLog(t *testing.T, logBuf *servertest.SyncBuffer, want map[string]int) string {
	t.Helper()
	var out string
	natstest.WaitFor(t, 10*time.Second, func() error {
		out = logBuf.String()
		for msg, n := range want {
			if got := strings.Count(out, "msg=\""+msg+"\""); got < n {
				return fmt.Errorf("%d %q lines, want %d:\n%s", got, msg, n, out)
			}
		}
		return nil
	})
	return out
}

// fragmentIn reports the first run of n characters of tok found in s.
func fragmentIn(s, tok string, n int) (string, bool) {
	for i := 0; i+n <= len(tok); i++ {
		if frag := tok[i : i+n]; strings.Contains(s, frag) {
			return frag, true
		}
	}
	return "", false
}
