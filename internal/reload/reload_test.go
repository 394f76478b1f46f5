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

// A Kubernetes Secret or ConfigMap volume updates by the atomic writer's
// swap: each file is a link through ..data to a timestamped directory, and
// an update renames a new ..data link over the old one. The file's own
// path never changes, and the new content may have the old one's size and
// modification second; the Value still sees the change.
func TestValueFollowsAKubernetesVolumeUpdate(t *testing.T) {
	dir := t.TempDir()
	sameTime := time.Now().Add(-time.Hour).Truncate(time.Second)
	update := func(version, content string) {
		t.Helper()
		ts := filepath.Join(dir, "..2026_12_01_"+version)
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts, "key"), []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
		// The same modification time for every version: only the inode
		// tells them apart.
		if err := os.Chtimes(filepath.Join(ts, "key"), sameTime, sameTime); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	update("a", "secret-a")
	file := filepath.Join(dir, "key")
	if err := os.Symlink(filepath.Join("..data", "key"), file); err != nil {
		t.Fatal(err)
	}
	v, err := New("test key", []string{file}, func() (string, error) {
		b, err := os.ReadFile(file)
		return string(b), err
	}, slog.New(slog.DiscardHandler))
	if err != nil || v.Get() != "secret-a" {
		t.Fatalf("New: %v, %q", err, v.Get())
	}
	update("b", "secret-b") // the same size and modification time
	deadline := time.Now().Add(5 * CheckEvery)
	for v.Get() != "secret-b" {
		if time.Now().After(deadline) {
			t.Fatalf("value %q after the volume's update, want secret-b", v.Get())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
