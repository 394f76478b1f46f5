package server_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/reload"
	"github.com/roomcast/roomcast/internal/wire"
)

// newEdKey returns a signer of a new Ed25519 key and its public key as PEM.
func newEdKey(t *testing.T) (*auth.Signer, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewKeySigner(priv, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// replace writes data to path the way a Kubernetes secret changes: a new
// file renamed over the old.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Key files rotate without a restart: after the public key file and the
// secret file are replaced, tokens of the new keys are accepted and those
// of the old ones refused; a replacement that does not load keeps the keys
// in use.
func TestKeyFilesAreReloadedWhenTheyChange(t *testing.T) {
	dir := t.TempDir()
	oldKey, oldPEM := newEdKey(t)
	newKey, newPEM := newEdKey(t)
	keyFile, secretFile := filepath.Join(dir, "jwt.pub"), filepath.Join(dir, "secret")
	oldSecret, newSecret := []byte("the old secret, thirty-two bytes or more"), []byte("the new secret, thirty-two bytes or more")
	replace(t, keyFile, oldPEM)
	replace(t, secretFile, append(oldSecret, '\n'))
	srv := startNode(t, nil, func(c *config.Serve) {
		c.Auth.PublicKeys = config.List{keyFile}
		c.Auth.SecretFile = secretFile
		c.Auth.Secret = oldSecret // as ReadSecrets leaves it
	})
	hmac := func(secret []byte) *auth.Signer {
		s, err := auth.NewHMACSigner(secret, auth.SignerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// accepted reports whether a connection with tok may subscribe.
	accepted := func(tok string) bool {
		c, err := client.Dial(t.Context(), wsURL(srv), http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Subscribe("s", "pool:p1", nil); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(time.Now().Add(10 * time.Second))
		return err == nil && m.Type == wire.TypeResponse
	}
	tokens := func(s *auth.Signer) string { return mint(t, s, time.Hour, "pool:read") }
	for name, tok := range map[string]string{"old key": tokens(oldKey), "old secret": tokens(hmac(oldSecret))} {
		if !accepted(tok) {
			t.Fatalf("%s refused before the rotation", name)
		}
	}

	replace(t, keyFile, newPEM)
	replace(t, secretFile, newSecret)
	natstest.WaitFor(t, 10*time.Second, func() error {
		for name, want := range map[string]bool{
			"new key": true, "new secret": true, "old key": false, "old secret": false,
		} {
			signer := map[string]*auth.Signer{"new key": newKey, "new secret": hmac(newSecret), "old key": oldKey, "old secret": hmac(oldSecret)}[name]
			if got := accepted(tokens(signer)); got != want {
				return fmt.Errorf("%s accepted: %v", name, got)
			}
		}
		return nil
	})

	// Over more than reload.CheckEvery, so the broken file is looked at,
	// the new key stays accepted.
	replace(t, keyFile, []byte("not a key"))
	for until := time.Now().Add(3 * reload.CheckEvery / 2); time.Now().Before(until); {
		if !accepted(tokens(newKey)) {
			t.Fatal("a key file that does not load replaced the keys in use")
		}
	}
}
