// Package config resolves roomcast's settings: flags, ROOMCAST_* environment
// variables, the compatible names of docs/protocol.md section 5, then defaults,
// in that order; and validates them, reporting every problem at once.
package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "ROOMCAST_"

// EnvName is the environment variable of a flag: --jwt-issuer is
// ROOMCAST_JWT_ISSUER.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then gives each flag not set on the command line
// the value of its ROOMCAST_* variable, or else of the first of its
// compatible names (compat maps flag names to variable names) that is set.
// getenv is os.Getenv outside tests.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string, compat map[string][]string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		for _, env := range append([]string{EnvName(f.Name)}, compat[f.Name]...) {
			v := getenv(env)
			if v == "" {
				continue
			}
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (for --%s): %w", env, v, f.Name, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// List is a flag.Value for repeatable or comma-separated flags.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set appends each comma-separated, non-empty item of v.
func (l *List) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
