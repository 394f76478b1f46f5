package main

import (
	"strings"

	"github.com/roomcast/roomcast/internal/config"
)

// tailToken is where tail takes its token from: --token (which anyone on
// the machine sees in ps), --token-file, or their environment variables.
type tailToken struct {
	value, file string // the flags, as given on the command line
}

// The variables of --token and --token-file (config.EnvName's). tail reads
// them itself, not through parseFlags, so that a flag on the command line
// wins over either variable instead of clashing with the other one.
const (
	tokenEnv     = config.EnvPrefix + "TOKEN"
	tokenFileEnv = config.EnvPrefix + "TOKEN_FILE"
)

// withoutTokenEnv is getenv without the token's variables, for parseFlags.
func withoutTokenEnv(getenv func(string) string) func(string) string {
	return func(k string) string {
		if k == tokenEnv || k == tokenFileEnv {
			return ""
		}
		return getenv(k)
	}
}

// resolve returns the token: the command line's, else the environment's;
// "" for none. Both sources at one level, a missing, empty or oversized
// file, or a token that is not one word are usage errors, which never
// quote it.
func (t tailToken) resolve(getenv func(string) string) (string, error) {
	value, file := t.value, t.file
	valueFrom, fileFrom := "--token", "--token-file"
	if value == "" && file == "" {
		value, file = getenv(tokenEnv), getenv(tokenFileEnv)
		valueFrom, fileFrom = tokenEnv, tokenFileEnv
	}
	switch {
	case value != "" && file != "":
		return "", usagef("%s and %s are both set: give one", valueFrom, fileFrom)
	case file != "":
		return readTokenFile(fileFrom, file)
	}
	return checkToken(valueFrom, strings.TrimSpace(value))
}

// readTokenFile reads the token of file, named by the flag or variable
// from, without the whitespace around it; the file is read as every
// secret file is (config.ReadSecretFile: bounded, never quoted).
func readTokenFile(from, file string) (string, error) {
	b, err := config.ReadSecretFile(from, file)
	if err != nil {
		return "", usagef("%w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", usagef("%s: %s holds no token", from, file)
	}
	return checkToken(from+" "+file, tok)
}

// checkToken refuses a token with whitespace inside: it goes into a
// header line, which a line break would end.
func checkToken(from, tok string) (string, error) {
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", usagef("%s: the token has a space or line break inside; want one JWT", from)
	}
	return tok, nil
}
