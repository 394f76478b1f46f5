package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
)

// runToken mints a token for development and tests, with serve's HMAC
// secret (ROOMCAST_JWT_SECRET, MAHAVISHNU_JWT_SECRET or --jwt-secret-file)
// or a PEM private key.
func runToken(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		return runTokenVerify(ctx, env, args[1:])
	}
	fs := newFlagSet(env, "token", "")
	user := fs.String("user", "", "user_id (and sub) of the token")
	var perms config.List
	fs.Var(&perms, "perm", "a permission: admin, KIND:read or KIND:read:ID; repeatable or comma-separated")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	secretFile := fs.String("jwt-secret-file", "", "file holding the HMAC secret (or "+strings.Join(config.SecretEnv, ", ")+")")
	keyFile := fs.String("jwt-private-key", "", "PEM private key (RSA, ECDSA or Ed25519) to sign with instead of the HMAC secret")
	issuer := fs.String("jwt-issuer", "", "iss of the token")
	audience := fs.String("jwt-audience", "", "aud of the token")
	if err := parseFlags(fs, env, args, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if len(perms) == 0 {
		return usagef("give at least one --perm (admin, KIND:read or KIND:read:ID)")
	}
	for _, p := range perms {
		if err := auth.CheckPermission(p); err != nil {
			return usagef("--perm: %w", err)
		}
	}
	signer, err := tokenSigner(env, *keyFile, *secretFile, auth.SignerOptions{Issuer: *issuer, Audience: *audience})
	if err != nil {
		return err
	}
	tok, err := signer.Sign(*user, perms, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, tok)
	return nil
}

// tokenSigner signs with the private key file when given, else with the
// HMAC secret serve would verify with.
func tokenSigner(env *environment, keyFile, secretFile string, opts auth.SignerOptions) (*auth.Signer, error) {
	if keyFile != "" {
		pem, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("--jwt-private-key: %w", err)
		}
		return auth.NewPEMSigner(pem, opts)
	}
	a := config.Auth{SecretFile: secretFile}
	if err := a.ReadSecrets(env.getenv); err != nil {
		return nil, err
	}
	if len(a.Secret) == 0 {
		return nil, usageError{errors.New("no key: set ROOMCAST_JWT_SECRET, --jwt-secret-file or --jwt-private-key")}
	}
	return auth.NewHMACSigner(a.Secret, opts)
}
