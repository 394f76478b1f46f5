// Package tlstest makes certificates for tests: a CA of the test's own,
// server certificates for loopback and client certificates, written as PEM
// files under t.TempDir().
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority of a test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
	dir  string
}

// NewCA makes a CA whose files live in a temporary directory of t.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "roomcast test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cert: cert, key: key, der: der, dir: t.TempDir()}
}

// CertFile writes the CA's certificate and returns its path.
func (ca *CA) CertFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(ca.dir, "ca.pem")
	writePEM(t, path, "CERTIFICATE", ca.der)
	return path
}

// Pool is a pool holding the CA, for clients that trust it.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Dir is the directory of the CA's files: ca.pem (once CertFile wrote
// it) and name.pem and name-key.pem of each certificate issued.
func (ca *CA) Dir() string { return ca.dir }

// Server issues a certificate for 127.0.0.1, localhost and hosts and writes
// it and its key as name.pem and name-key.pem (overwriting, as a rotation
// does). It returns the paths and the certificate's serial number.
func (ca *CA) Server(t testing.TB, name string, hosts ...string) (cert, key string, serialNumber *big.Int) {
	t.Helper()
	return ca.host(t, name, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, hosts)
}

// Peer is Server for a certificate that also authenticates as a client:
// a cluster's route, which dials its peers and is dialled by them.
func (ca *CA) Peer(t testing.TB, name string, hosts ...string) (cert, key string, serialNumber *big.Int) {
	t.Helper()
	return ca.host(t, name, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, hosts)
}

func (ca *CA) host(t testing.TB, name string, usage []x509.ExtKeyUsage, hosts []string) (cert, key string, serialNumber *big.Int) {
	t.Helper()
	tmpl := ca.leaf(t, name)
	tmpl.ExtKeyUsage = usage
	tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	tmpl.DNSNames = append([]string{"localhost"}, hosts...)
	cert, key = ca.write(t, name, tmpl)
	return cert, key, tmpl.SerialNumber
}

// Client issues a client certificate for a TLS client configuration.
func (ca *CA) Client(t testing.TB, name string) tls.Certificate {
	t.Helper()
	tmpl := ca.leaf(t, name)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	certFile, keyFile := ca.write(t, name, tmpl)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func (ca *CA) leaf(t testing.TB, name string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
}

// write signs tmpl and writes the certificate and a fresh key. The key is
// written first and both through a rename, so a reader never sees a
// certificate without its key.
func (ca *CA) write(t testing.TB, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	writePEM(t, certFile, "CERTIFICATE", der)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
