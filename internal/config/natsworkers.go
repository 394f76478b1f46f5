package config

import (
	"errors"
	"flag"
	"fmt"
	"net"

	"github.com/nats-io/nkeys"

	"github.com/roomcast/roomcast/internal/edge"
)

// NATSWorkers is how pool workers authenticate to the embedded NATS server
// (serve without --nats). Like every secret, the password comes from the
// environment or a file, never from a flag.
type NATSWorkers struct {
	User           string
	Password       string // from PasswordFile or NATSPublisherPasswordEnv
	PasswordFile   string
	NKeys          List // user public keys (U...)
	AllowAnonymous bool
}

// NATSPublisherPasswordEnv holds the workers' password (or its bcrypt
// hash) when --nats-publisher-password-file is not given.
const NATSPublisherPasswordEnv = "ROOMCAST_NATS_PUBLISHER_PASSWORD"

// DefaultNATSPublisherUser is natsconf's name for pool workers.
const DefaultNATSPublisherUser = "publisher"

func (w *NATSWorkers) register(fs *flag.FlagSet) {
	fs.StringVar(&w.User, "nats-publisher-user", DefaultNATSPublisherUser, "embedded NATS: user name of pool workers; their password comes from --nats-publisher-password-file or "+NATSPublisherPasswordEnv)
	fs.StringVar(&w.PasswordFile, "nats-publisher-password-file", "", "embedded NATS: file holding the pool workers' password, or its bcrypt hash ($2a$...)")
	fs.Var(&w.NKeys, "nats-publisher-nkey", "embedded NATS: NKey user public key (U...) a pool worker may authenticate with; repeatable")
	fs.BoolVar(&w.AllowAnonymous, "nats-allow-anonymous", false, "embedded NATS: let clients without credentials publish events on a non-loopback --nats-listen (they may only publish room events, never read)")
}

// readSecrets reads the password: from the file, else the environment.
func (w *NATSWorkers) readSecrets(getenv func(string) string) error {
	if w.PasswordFile != "" {
		p, err := ReadSecretFile("--nats-publisher-password-file", w.PasswordFile)
		w.Password = string(p)
		return err
	}
	w.Password = getenv(NATSPublisherPasswordEnv)
	return nil
}

// Authenticate reports whether workers must present credentials.
func (w *NATSWorkers) Authenticate() bool { return w.Password != "" || len(w.NKeys) > 0 }

func (w *NATSWorkers) configured() bool {
	return w.Authenticate() || w.PasswordFile != "" || w.AllowAnonymous || w.User != DefaultNATSPublisherUser
}

// validate checks the settings; listen is the embedded server's address.
func (w *NATSWorkers) validate(embedded bool, listen string) []error {
	if !embedded {
		if w.configured() {
			return []error{errors.New("--nats-publisher-*, " + NATSPublisherPasswordEnv + " and --nats-allow-anonymous are for the embedded NATS; with --nats, workers authenticate as the external NATS says (natsconf/)")}
		}
		return nil
	}
	var errs []error
	if w.User == "" {
		// The anonymous user's name is refused by the embedded server
		// itself (natsembed.Protection), at start.
		errs = append(errs, errors.New("--nats-publisher-user is empty: name the pool workers' user"))
	}
	for i, k := range w.NKeys {
		if !nkeys.IsValidPublicUserKey(k) {
			// Not quoted: it may be a seed given by mistake.
			errs = append(errs, fmt.Errorf("--nats-publisher-nkey %d of %d is not an NKey user public key (U followed by 55 characters; the seed, SU..., stays with the worker)", i+1, len(w.NKeys)))
		}
	}
	if w.Authenticate() || w.AllowAnonymous {
		return errs
	}
	if host, _, err := net.SplitHostPort(listen); err == nil && !edge.IsLoopbackHost(host) {
		errs = append(errs, fmt.Errorf("--nats-listen %q is not a loopback address and pool workers need no credentials on it: "+
			"anyone who can reach it could publish events to every room; give workers a password "+
			"(--nats-publisher-password-file or %s, user --nats-publisher-user) or NKeys (--nats-publisher-nkey), "+
			"or pass --nats-allow-anonymous (workers may then only publish room events)", listen, NATSPublisherPasswordEnv))
	}
	return errs
}
