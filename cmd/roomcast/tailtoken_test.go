package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/servertest"
)

// writeFile writes content to a new file of the test and returns its name.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// tail takes its token from --token-file (out of ps), ROOMCAST_TOKEN_FILE
// or ROOMCAST_TOKEN; a flag on the command line wins over the environment.
func TestTailTakesItsTokenFromAFileOrTheEnvironment(t *testing.T) {
	srv, tok := authNode(t)
	file := writeFile(t, "token", "  "+tok+"\n\n") // as an editor or echo leaves it
	for name, tc := range map[string]struct {
		vars map[string]string
		args []string
	}{
		"--token-file":        {nil, []string{"--token-file", file}},
		"ROOMCAST_TOKEN_FILE": {map[string]string{"ROOMCAST_TOKEN_FILE": file}, nil},
		"ROOMCAST_TOKEN":      {map[string]string{"ROOMCAST_TOKEN": tok}, nil},
		"flag over variable":  {map[string]string{"ROOMCAST_TOKEN": "not.a.token"}, []string{"--token-file", file}},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		var out, errb servertest.SyncBuffer
		done := make(chan int)
		args := append(append([]string{"tail", "--url", servertest.WSURL(srv)}, tc.args...), "pool:p1")
		go func() { done <- runWithEnv(ctx, &out, &errb, "", tc.vars, args...) }()
		waitOutput(t, &errb, "subscribed to pool:p1")
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("%s: tail exit %d: %s", name, code, errb.String())
		}
	}
}

// A token source that cannot be used is a usage error (exit 2) that names
// it, without the token.
func TestTailTokenSourceErrors(t *testing.T) {
	const tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"
	file := writeFile(t, "token", tok+"\n")
	for name, tc := range map[string]struct {
		vars map[string]string
		args []string
		want string
	}{
		"missing file":          {nil, []string{"--token-file", filepath.Join(t.TempDir(), "absent")}, "--token-file"},
		"empty file":            {nil, []string{"--token-file", writeFile(t, "empty", " \n\t\n")}, "holds no token"},
		"two lines":             {nil, []string{"--token-file", writeFile(t, "two", tok+"\n"+tok+"\n")}, "line break"},
		"too large":             {nil, []string{"--token-file", writeFile(t, "large", strings.Repeat("a", config.MaxSecretFile+1))}, "larger than"},
		"both flags":            {nil, []string{"--token", tok, "--token-file", file}, "--token and --token-file"},
		"both variables":        {map[string]string{"ROOMCAST_TOKEN": tok, "ROOMCAST_TOKEN_FILE": file}, nil, "ROOMCAST_TOKEN and ROOMCAST_TOKEN_FILE"},
		"missing variable file": {map[string]string{"ROOMCAST_TOKEN_FILE": "/no/such/token"}, nil, "ROOMCAST_TOKEN_FILE"},
	} {
		var out, errb servertest.SyncBuffer
		args := append(append([]string{"tail", "--url", "ws://127.0.0.1:1"}, tc.args...), "pool:p1")
		// Bounded: a token taken by mistake would have tail reconnect.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		code := runWithEnv(ctx, &out, &errb, "", tc.vars, args...)
		cancel()
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming %q", name, code, errb.String(), tc.want)
		}
		if strings.Contains(errb.String(), "c2lnbmF0dXJl") {
			t.Errorf("%s: the token is in the message %q", name, errb.String())
		}
	}
}

// tail without a token against an edge that requires one says how to pass
// one, not the protocol's wording, and stops.
func TestTailWithoutATokenSaysHowToPassOne(t *testing.T) {
	srv, _ := authNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	code, _, errs := runCmd(ctx, "", "tail", "--url", servertest.WSURL(srv), "pool:p1")
	if code != 1 || strings.Contains(errs, "auth request") || strings.Contains(errs, "reconnecting") {
		t.Fatalf("exit %d, stderr %q; want 1, no protocol wording, no reconnection", code, errs)
	}
	for _, w := range []string{"requires a token", "--token-file", "ROOMCAST_TOKEN", "--token"} {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q: %q", w, errs)
		}
	}
}
