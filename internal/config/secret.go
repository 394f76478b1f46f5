package config

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSecretFile bounds what a secret file may hold: secrets, passwords and
// tokens are a few KiB at most, and a file named by mistake (a log, a
// device) is refused rather than read whole.
const MaxSecretFile = 64 << 10

// ReadSecretFile reads the secret that label (the flag or variable that
// named file, for the error) names, without its final line break. A
// missing, empty or over-large file is an error; no error holds the secret.
func ReadSecretFile(label, file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", label, err)
	case len(b) > MaxSecretFile:
		return nil, fmt.Errorf("%s: %s is larger than %d KiB", label, file, MaxSecretFile>>10)
	}
	secret := []byte(strings.TrimRight(string(b), "\r\n"))
	if len(secret) == 0 {
		return nil, fmt.Errorf("%s: %s is empty", label, file)
	}
	return secret, nil
}
