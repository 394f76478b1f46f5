package config

import (
	"errors"
	"flag"
	"fmt"

	"github.com/nats-io/nats.go"
)

// NATSAuth is how serve, publish and demo authenticate to an external NATS
// and secure the connection. Like the JWT secret, the password and token come from the
// environment, never from flags.
type NATSAuth struct {
	Creds    string // a .creds file (user JWT and NKey seed)
	NKeySeed string // a file holding an NKey seed
	User     string
	Password string // ROOMCAST_NATS_PASSWORD
	Token    string // ROOMCAST_NATS_TOKEN
	TLSCA    string // CA of the NATS servers' certificates
	TLSCert  string // client certificate, when NATS requires one
	TLSKey   string
}

// NATS secret variables.
const (
	NATSPasswordEnv = "ROOMCAST_NATS_PASSWORD"
	NATSTokenEnv    = "ROOMCAST_NATS_TOKEN"
)

// RegisterNATSAuth adds the NATS security flags to a client command's
// flag set (publish, demo); Load completes them after parsing.
func RegisterNATSAuth(fs *flag.FlagSet) *NATSAuth {
	n := &NATSAuth{}
	n.register(fs)
	return n
}

// Load reads the password or token from getenv and checks the settings of
// a client command.
func (n *NATSAuth) Load(getenv func(string) string) error {
	n.readSecrets(getenv)
	return errors.Join(n.validate(false)...)
}

func (n *NATSAuth) register(fs *flag.FlagSet) {
	fs.StringVar(&n.Creds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&n.NKeySeed, "nats-nkey", "", "file holding the NKey seed to authenticate to NATS with")
	fs.StringVar(&n.User, "nats-user", "", "NATS user name; the password comes from "+NATSPasswordEnv)
	fs.StringVar(&n.TLSCA, "nats-tls-ca", "", "PEM CA of the NATS servers' certificates: connect with TLS")
	fs.StringVar(&n.TLSCert, "nats-tls-cert", "", "PEM client certificate for NATS servers that require one")
	fs.StringVar(&n.TLSKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
}

func (n *NATSAuth) readSecrets(getenv func(string) string) {
	n.Password = getenv(NATSPasswordEnv)
	n.Token = getenv(NATSTokenEnv)
}

// Configured reports whether any NATS security setting is given.
func (n *NATSAuth) Configured() bool {
	return n.Creds != "" || n.NKeySeed != "" || n.User != "" || n.Token != "" || n.TLSCA != "" || n.TLSCert != ""
}

func (n *NATSAuth) validate(embedded bool) []error {
	if !n.Configured() {
		return nil
	}
	var errs []error
	if embedded {
		errs = append(errs, errors.New("--nats-creds, --nats-nkey, --nats-user, --nats-tls-* and "+NATSTokenEnv+" are for an external NATS (--nats)"))
	}
	ways := 0
	for _, set := range []bool{n.Creds != "", n.NKeySeed != "", n.User != "", n.Token != ""} {
		if set {
			ways++
		}
	}
	if ways > 1 {
		errs = append(errs, errors.New("authenticate to NATS one way: --nats-creds, --nats-nkey, --nats-user or "+NATSTokenEnv))
	}
	if n.User != "" && n.Password == "" {
		errs = append(errs, fmt.Errorf("--nats-user needs its password in %s", NATSPasswordEnv))
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		errs = append(errs, errors.New("--nats-tls-cert and --nats-tls-key go together"))
	}
	return errs
}

// Options are the NATS connection options of the settings: one way to
// authenticate, and TLS when a CA or client certificate is given (1.2 at
// least). nats.go reads the credentials file and the TLS files again at
// each connection, so they rotate without a restart (the server's
// TestNATSTLSFilesRotateWithoutARestart); an NKey's public key is read here
// once.
func (n *NATSAuth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(n.Creds))
	case n.NKeySeed != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", n.NKeySeed, err)
		}
		opts = append(opts, o)
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if n.TLSCert != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	return opts, nil
}
