package reload

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A Value follows its file: a change is built within CheckEvery of the
// next use, a change that does not build keeps the value in use and is
// logged once, and a later good change is taken.
func TestValueFollowsItsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "v")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	build := func() (string, error) {
		b, err := os.ReadFile(file)
		if err != nil || strings.HasPrefix(string(b), "bad") {
			return "", errors.Join(err, errors.New("does not build"))
		}
		return string(b), nil
	}
	var logs bytes.Buffer
	write("one")
	v, err := New("test value", []string{file}, build, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || v.Get() != "one" {
		t.Fatalf("New: %v, %q", err, v.Get())
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * CheckEvery)
		for v.Get() != want {
			if time.Now().After(deadline) {
				t.Fatalf("value %q, want %q", v.Get(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write("two")
	waitFor("two")
	write("bad three")
	for until := time.Now().Add(3 * CheckEvery / 2); time.Now().Before(until); {
		if got := v.Get(); got != "two" {
			t.Fatalf("a change that does not build gave %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Fatalf("the failed change was logged %d times, want once:\n%s", n, logs.String())
	}
	write("four")
	waitFor("four")
}

// New fails when a file is missing or the value does not build.
func TestNewFailsOnBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := New("x", []string{filepath.Join(dir, "missing")}, func() (int, error) { return 1, nil }, slog.Default()); err == nil {
		t.Error("a missing file was accepted")
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New("x", []string{file}, func() (int, error) { return 0, fmt.Errorf("no") }, slog.Default()); err == nil {
		t.Error("a value that does not build was accepted")
	}
}
