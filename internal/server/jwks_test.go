package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A node takes its keys from a JWKS endpoint over HTTPS (with a CA of its
// own): tokens signed with a published key pass, others do not.
func TestJWKSOverHTTPS(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	doc, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": b64(priv.N.Bytes()), "e": b64(big.NewInt(int64(priv.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	url, caFile := jwksEndpoint(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))

	srv := startNode(t, nil, func(c *config.Serve) {
		c.Auth.JWKS = url
		c.Auth.JWKSCA = caFile
	})
	sign := func(kid string, key *rsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"exp": time.Now().Add(time.Hour).Unix(), "permissions": []string{"pool:read"},
		})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	subscribe(t, dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + sign("k1", priv)}}), "pool:p1", nil)

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + sign("k1", other)}})
	expectClose(t, c, int(wire.ClosePolicy))
}

// jwksEndpoint serves h over HTTPS on loopback with a certificate of a CA
// of its own, until the test ends; it returns the document's URL and the
// CA's file, for --jwks and --jwks-ca.
func jwksEndpoint(t testing.TB, h http.Handler) (url, caFile string) {
	t.Helper()
	ca := tlstest.NewCA(t)
	certFile, keyFile, _ := ca.Server(t, "jwks")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL + "/jwks.json", ca.CertFile(t)
}
