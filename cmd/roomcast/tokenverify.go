package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
)

// errTokenRefused makes token verify exit 1 once it has printed the claims.
var errTokenRefused = errors.New("the token is not accepted")

// runTokenVerify shows what a token says (user, permissions, expiry) and
// whether the keys serve would be given accept it, and why not. The token
// itself is never printed: only its decoded claims.
func runTokenVerify(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "token verify", "[TOKEN]")
	var tok tailToken
	fs.StringVar(&tok.value, "token", "", "the JWT (or the argument, or ROOMCAST_TOKEN); other users see it in ps: prefer --token-file")
	fs.StringVar(&tok.file, "token-file", "", "file holding the JWT (or ROOMCAST_TOKEN_FILE)")
	var keys config.Auth
	keys.RegisterKeys(fs)
	flagEnv := *env
	flagEnv.getenv = withoutTokenEnv(env.getenv)
	if err := parseFlags(fs, &flagEnv, args, nil); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return usagef("give one token, got %d arguments", fs.NArg())
	case fs.NArg() == 1 && tok.value != "":
		return usagef("the token is both an argument and --token: give one")
	case fs.NArg() == 1:
		tok.value = fs.Arg(0)
	}
	token, err := tok.resolve(env.getenv)
	if err != nil {
		return err
	}
	if token == "" {
		return usagef("no token: give it as the argument, --token-file FILE or ROOMCAST_TOKEN")
	}
	claims, err := decodeClaims(token)
	if err != nil {
		return usageError{err}
	}
	if err := keys.ReadSecrets(env.getenv); err != nil {
		return usageError{err}
	}
	verdict := verifyWith(ctx, keys, token)
	if err := printClaims(env.stdout, claims, verdict); err != nil {
		return err
	}
	if verdict != nil {
		return fmt.Errorf("%w: %w", errTokenRefused, verdict)
	}
	return nil
}

// verifyWith verifies token with the keys and checks serve would use; nil
// when they accept it.
func verifyWith(ctx context.Context, keys config.Auth, token string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends a JWKS source's refreshes
	v, err := server.NewVerifier(ctx, keys, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	_, err = v.Verify(token)
	return err
}

// tokenClaims are a token's claims as it carries them, before any check.
type tokenClaims struct {
	UserID      string          `json:"user_id"`
	Sub         string          `json:"sub"`
	Permissions []string        `json:"permissions"`
	Exp         *float64        `json:"exp"`
	Iat         *float64        `json:"iat"`
	Nbf         *float64        `json:"nbf"`
	Iss         string          `json:"iss"`
	Aud         json.RawMessage `json:"aud"`
}

// decodeClaims reads the claims of a JWT without verifying it. Its errors
// never quote the token.
func decodeClaims(token string) (*tokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d parts separated by dots, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("not a JWT: the claims are not base64url")
	}
	var c tokenClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, errors.New("not a JWT: the claims are not a JSON object of the usual types")
	}
	return &c, nil
}

// printClaims writes the claims, one per line, then the keys' verdict.
func printClaims(w io.Writer, c *tokenClaims, verdict error) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("user_id", c.UserID)
	row("sub", c.Sub)
	row("permissions", permissionList(c.Permissions))
	row("issued", claimTime(c.Iat))
	row("not before", claimTime(c.Nbf))
	exp := claimTime(c.Exp)
	if exp == "" {
		exp = "(none: serve refuses a token without exp)"
	}
	row("expires", exp)
	row("issuer", c.Iss)
	row("audience", strings.Trim(string(c.Aud), `"`))
	if verdict == nil {
		row("keys", "accepted by the configured keys")
	} else {
		row("keys", "refused: "+auth.Reason(verdict)+" ("+verdict.Error()+")")
	}
	return tw.Flush()
}

// permissionList lists the permissions, marking those outside the grammar
// (which open no room).
func permissionList(perms []string) string {
	if len(perms) == 0 {
		return "(none: the token opens no room)"
	}
	out := make([]string, len(perms))
	for i, p := range perms {
		out[i] = p
		if auth.CheckPermission(p) != nil {
			out[i] += " (not a permission: opens nothing)"
		}
	}
	return strings.Join(out, ", ")
}

// claimTime shows a NumericDate claim in UTC with how far it is from now.
func claimTime(v *float64) string {
	if v == nil {
		return ""
	}
	t := time.Unix(int64(*v), 0).UTC()
	d := time.Until(t).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", t.Format(time.RFC3339), d)
	}
	return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), -d)
}
