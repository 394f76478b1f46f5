package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// roomcast token mints what serve verifies with the same secret.
func TestTokenCommand(t *testing.T) {
	secret := []byte("the shared secret, thirty-two bytes or more")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t.Context(), "", "token", "--jwt-secret-file", file, "--user", "ops", "--perm", "pool:read,workflow:read:w1", "--ttl", "10m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	keys, err := auth.HMACKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(keys, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("the minted token does not verify: %v", err)
	}
	if c.UserID != "ops" || !slices.Equal(c.Permissions, []string{"pool:read", "workflow:read:w1"}) || !c.MayRead("pool", "p9") || c.MayRead("workflow", "w2") {
		t.Fatalf("claims %+v", c)
	}
	for name, args := range map[string][]string{
		"no permission": {"token", "--jwt-secret-file", file},
		"no key":        {"token", "--perm", "admin"},
	} {
		if code, _, errs := runCmd(t.Context(), "", args...); code != 2 || errs == "" {
			t.Errorf("%s: exit %d (%q), want 2 with a message", name, code, errs)
		}
	}
	if strings.Contains(errs, string(secret)) {
		t.Fatal("the secret was printed")
	}
}

// tail stops with a clear message when the edge refuses its token or a
// room, instead of reconnecting forever.
func TestTailStopsOnAuthRefusals(t *testing.T) {
	srv, poolOnly := authNode(t)
	for name, tc := range map[string]struct {
		token, room, want string
	}{
		"forbidden room": {poolOnly, "workflow:w1", wire.CodeForbidden},
		"bad token":      {"not.a.token", "pool:p1", "1008"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		code, _, errs := runCmd(ctx, "", "tail", "--url", servertest.WSURL(srv), "--token", tc.token, tc.room)
		cancel()
		if code != 1 || !strings.Contains(errs, tc.want) || strings.Contains(errs, "reconnecting") {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 naming %s, no reconnection", name, code, errs, tc.want)
		}
	}
}

// authNode starts a node that asks for tokens signed with an HMAC secret,
// and returns it with a token of user u for pool:read.
func authNode(t *testing.T) (*server.Server, string) {
	t.Helper()
	secret := []byte("the shared secret, thirty-two bytes or more")
	srv := servertest.Start(t, nil, func(c *config.Serve) { c.Auth.Secret = secret })
	signer, err := auth.NewHMACSigner(secret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Sign("u", []string{"pool:read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return srv, tok
}
