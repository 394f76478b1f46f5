package main

import (
	"os"
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
// "" for none. Both sources at one level, a missing or empty file, or a
// token that is not one word are usage errors, which never quote it.
func (t tailToken) resolve(getenv func(string) string) (string, error) {
	value, file := t.value, t.file
	from := [2]string{"--token", "--token-file"}
	if value == "" && file == "" {
		value, file = getenv(tokenEnv), getenv(tokenFileEnv)
		from = [2]string{tokenEnv, tokenFileEnv}
	}
	var tok string
	switch {
	case value != "" && file != "":
		return "", usagef("%s and %s are both set: give one", from[0], from[1])
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("%s: %w", from[1], err)
		}
		if tok = strings.TrimSpace(string(b)); tok == "" {
			return "", usagef("%s: %s holds no token", from[1], file)
		}
		from[0] = from[1] + " " + file
	default:
		tok = strings.TrimSpace(value)
	}
	// The token goes into a header line: a line break would end it.
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", usagef("%s: the token has a space or line break inside; want one JWT", from[0])
	}
	return tok, nil
}
