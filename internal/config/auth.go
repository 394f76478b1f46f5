package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Auth is serve's authentication settings (docs/protocol.md section 4). The HMAC
// secret never comes from a flag, where it would show in process lists: it
// comes from the environment or from a file.
type Auth struct {
	Secret     []byte // HMAC secret; from ReadSecrets
	SecretFile string
	PublicKeys List   // PEM files
	JWKS       string // a file, or an https:// URL
	JWKSCA     string // CA of the JWKS endpoint; empty: the system's
	Issuer     string
	Audience   string
	Leeway     time.Duration
	Timeout    time.Duration // for the first message's token
}

// SecretEnv are the variables the HMAC secret is read from, in order.
var SecretEnv = []string{"ROOMCAST_JWT_SECRET", "MAHAVISHNU_JWT_SECRET"}

// DefaultAuthTimeout is how long a connection may wait before it sends its
// token.
const DefaultAuthTimeout = 10 * time.Second

func (a *Auth) register(fs *flag.FlagSet) {
	a.RegisterKeys(fs)
	fs.DurationVar(&a.Timeout, "auth-timeout", DefaultAuthTimeout, "how long a connection without a token may wait before its auth request (then 1008)")
}

// RegisterKeys defines the flags of the keys and claims tokens are
// verified with, for a command that checks tokens as serve does (`token
// verify`).
func (a *Auth) RegisterKeys(fs *flag.FlagSet) {
	fs.StringVar(&a.SecretFile, "jwt-secret-file", "", "file holding the HMAC secret of HS256/384/512 tokens (or "+strings.Join(SecretEnv, ", ")+")")
	fs.Var(&a.PublicKeys, "jwt-public-key", "PEM public key file (RSA, ECDSA or Ed25519) of RS/ES/EdDSA tokens; repeatable")
	fs.StringVar(&a.JWKS, "jwks", "", "JWKS document: a file, or an https:// URL (cached, refreshed)")
	fs.StringVar(&a.JWKSCA, "jwks-ca", "", "PEM CA of the --jwks https endpoint (default: the system's roots)")
	fs.StringVar(&a.Issuer, "jwt-issuer", "", "required iss of tokens (empty: not checked)")
	fs.StringVar(&a.Audience, "jwt-audience", "", "required aud of tokens (empty: not checked)")
	fs.DurationVar(&a.Leeway, "jwt-leeway", 5*time.Second, "clock skew allowed on exp, nbf and iat")
}

// ReadSecrets reads the HMAC secret: from --jwt-secret-file, else from the
// first of SecretEnv that is set. It never puts the secret in an error.
func (a *Auth) ReadSecrets(getenv func(string) string) error {
	if a.SecretFile != "" {
		secret, err := ReadSecretFile("--jwt-secret-file", a.SecretFile)
		a.Secret = secret
		return err
	}
	for _, name := range SecretEnv {
		if v := getenv(name); v != "" {
			a.Secret = []byte(v)
			return nil
		}
	}
	return nil
}

// Configured reports whether any key is set: then every connection must
// authenticate.
func (a *Auth) Configured() bool {
	return len(a.Secret) > 0 || len(a.PublicKeys) > 0 || a.JWKS != ""
}

// validate reports the auth settings' problems.
func (a *Auth) validate() []error {
	var errs []error
	if a.Leeway < 0 || a.Timeout <= 0 {
		errs = append(errs, errors.New("--jwt-leeway cannot be negative and --auth-timeout must be positive"))
	}
	if len(a.Secret) > 0 && len(a.Secret) < 32 {
		errs = append(errs, fmt.Errorf("the HMAC secret has %d bytes; HS256 needs at least 32", len(a.Secret)))
	}
	if strings.HasPrefix(a.JWKS, "http://") {
		errs = append(errs, errors.New("--jwks over plain http:// could be tampered with; use https:// or a file"))
	}
	return errs
}
