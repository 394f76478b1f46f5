package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// embeddedWithDataDir is serve's configuration with an embedded NATS
// storing under dir.
func embeddedWithDataDir(t *testing.T, dir string) *Serve {
	t.Helper()
	c, err := parseServe(t, []string{"--data-dir", dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A missing data directory is created, and the check leaves nothing in it.
func TestCheckDataDirCreatesAMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := embeddedWithDataDir(t, dir).CheckDataDir(); err != nil {
		t.Fatalf("CheckDataDir: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the directory was not created: %v", err)
	}
	if len(entries) != 0 {
		t.Fatalf("the check left %v behind", entries)
	}
}

// A data directory that cannot be made or written fails at once, and the
// error names it. Paths through a regular file fail even for root, whom
// permission bits do not stop.
func TestCheckDataDirNamesAnUnusableDirectory(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{
		filepath.Join(file, "sub"), // its parent is a file
		file,                       // it is a file
	} {
		err := embeddedWithDataDir(t, dir).CheckDataDir()
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("data dir %s: error %v, want one that names it", dir, err)
		}
	}
}

// A read-only directory fails too; only checked when permission bits
// apply, which is not the case for root.
func TestCheckDataDirRefusesAReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes through permission bits; the file cases above cover root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := embeddedWithDataDir(t, dir).CheckDataDir(); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("read-only data dir: error %v, want one that names it", err)
	}
}

// With an external NATS there is no local storage to check.
func TestCheckDataDirIgnoresDataDirWithExternalNATS(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseServe(t, []string{"--data-dir", filepath.Join(file, "sub"), "--nats", "nats://127.0.0.1:4222"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckDataDir(); err != nil {
		t.Fatalf("external NATS: %v", err)
	}
}
