package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/servertest"
)

// token refuses a permission outside the grammar the node matches by,
// with a usage error naming it, instead of minting a token that opens
// nothing.
func TestTokenRefusesBadPermissions(t *testing.T) {
	vars := map[string]string{"ROOMCAST_JWT_SECRET": "the shared secret, thirty-two bytes or more"}
	for _, perm := range []string{"bogus", "pool:write", "Pool:read", "pool:read:a.b", "pool:read,nope"} {
		var out, errb servertest.SyncBuffer
		code := runWithEnv(t.Context(), &out, &errb, "", vars, "token", "--perm", perm)
		if code != 2 || !strings.Contains(errb.String(), "--perm: permission") || out.String() != "" {
			t.Errorf("--perm %q: exit %d, stdout %q, stderr %q; want 2, no token, the permission named", perm, code, out.String(), errb.String())
		}
	}
	var out, errb servertest.SyncBuffer
	if code := runWithEnv(t.Context(), &out, &errb, "", vars, "token", "--perm", "admin,pool:read,workflow:read:w-1"); code != 0 {
		t.Fatalf("good permissions: exit %d, %s", code, errb.String())
	}
}

// token verify shows a token's claims and the keys' verdict, with the
// reason when they refuse it, and never prints the token.
func TestTokenVerify(t *testing.T) {
	secret := "the shared secret, thirty-two bytes or more"
	secretFile := writeFile(t, "secret", secret)
	signer, err := auth.NewHMACSigner([]byte(secret), auth.SignerOptions{Issuer: "me"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := signer.Sign("ops", []string{"pool:read", "junk"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	oldSigner, err := auth.NewHMACSigner([]byte(secret), auth.SignerOptions{Issuer: "me", Now: past})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := oldSigner.Sign("ops", []string{"pool:read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.NewHMACSigner([]byte("another secret, thirty-two bytes or more"), auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Sign("ops", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	goodFile := writeFile(t, "token", good+"\n")

	for name, tc := range map[string]struct {
		args []string
		vars map[string]string
		code int
		want []string
		tok  string
	}{
		"accepted, from a file": {[]string{"--token-file", goodFile, "--jwt-secret-file", secretFile}, nil, 0,
			[]string{"user_id", "ops", "pool:read, junk (not a permission", "expires", "(in ", "issuer", "me", "accepted by the configured keys"}, good},
		"accepted, from the environment": {nil, map[string]string{"ROOMCAST_TOKEN": good, "ROOMCAST_JWT_SECRET": secret}, 0,
			[]string{"accepted"}, good},
		"expired": {[]string{"--jwt-secret-file", secretFile, expired}, nil, 1,
			[]string{"ago)", "refused: expired"}, expired},
		"another key": {[]string{"--jwt-secret-file", secretFile, forged}, nil, 1,
			[]string{"admin", "refused: signature"}, forged},
		"another issuer required": {[]string{"--jwt-secret-file", secretFile, "--jwt-issuer", "them", good}, nil, 1,
			[]string{"refused: issuer"}, good},
		"no keys": {[]string{good}, nil, 1, []string{"refused", "no key configured"}, good},
	} {
		var out, errb servertest.SyncBuffer
		code := runWithEnv(t.Context(), &out, &errb, "", tc.vars, append([]string{"token", "verify"}, tc.args...)...)
		all := out.String() + errb.String()
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d; output %q", name, code, tc.code, all)
		}
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: output lacks %q: %q", name, w, all)
			}
		}
		if strings.Contains(all, tc.tok) || strings.Contains(all, strings.Split(tc.tok, ".")[2]) {
			t.Errorf("%s: the token was printed: %q", name, all)
		}
	}

	for name, args := range map[string][]string{
		"no token":        {"token", "verify", "--jwt-secret-file", secretFile},
		"not a JWT":       {"token", "verify", "--jwt-secret-file", secretFile, "not-a-jwt"},
		"two tokens":      {"token", "verify", good, good},
		"arg and --token": {"token", "verify", "--token", good, good},
		"missing file":    {"token", "verify", "--token-file", filepath.Join(t.TempDir(), "none")},
	} {
		code, out, errs := runCmd(t.Context(), "", args...)
		if code != 2 || errs == "" || strings.Contains(out+errs, good) {
			t.Errorf("%s: exit %d, stderr %q; want 2 with a message and no token", name, code, errs)
		}
	}
	_ = os.Remove(goodFile)
}
