// Package reload keeps a value built from files up to date without a
// restart: the TLS certificate of the listener, the keys that verify
// tokens. On use, at most once a second, it looks whether the files
// changed (inode, modification time and size; os.Stat follows symbolic
// links, so the swap of a Kubernetes secret's ..data link shows) and builds the
// value again. A change that does not build (a key written after its
// certificate, say) keeps the value in use, is logged once, and is tried
// again at the next check.
package reload

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckEvery is how often, at most, a Value looks at its files: one stat
// per file a second, however often it is used.
const CheckEvery = time.Second

// Value is a value built from files, rebuilt when they change.
type Value[T any] struct {
	// Set at construction.
	what  string // what the files are, for the log: "TLS certificate"
	files []string
	build func() (T, error)
	log   *slog.Logger

	mu        sync.Mutex
	current   T         // guarded by mu
	loaded    string    // guarded by mu: the files' stamp when current was built
	failed    string    // guarded by mu: the stamp that last failed to build, logged once
	checkedAt time.Time // guarded by mu
}

// New builds the value from files; it fails when they do not build.
func New[T any](what string, files []string, build func() (T, error), log *slog.Logger) (*Value[T], error) {
	v := &Value[T]{what: what, files: files, build: build, log: log}
	stamp, err := v.stamp()
	if err != nil {
		return nil, err
	}
	if v.current, err = build(); err != nil {
		return nil, err
	}
	v.loaded, v.checkedAt = stamp, time.Now()
	return v, nil
}

// Get returns the current value, building it again first when the files
// changed since the last check.
func (v *Value[T]) Get() T {
	v.mu.Lock()
	defer v.mu.Unlock()
	if now := time.Now(); now.Sub(v.checkedAt) >= CheckEvery {
		v.checkedAt = now
		v.reloadLocked()
	}
	return v.current
}

func (v *Value[T]) reloadLocked() {
	stamp, err := v.stamp()
	if err == nil && stamp == v.loaded {
		return
	}
	var next T
	if err == nil {
		next, err = v.build()
	}
	if err != nil {
		if stamp != v.failed {
			v.failed = stamp
			v.log.Warn(v.what+" files changed but do not load; the previous ones stay in use", "err", err)
		}
		return
	}
	v.current, v.loaded, v.failed = next, stamp, ""
	v.log.Info(v.what+" reloaded", "files", v.files)
}

// stamp sums up the files' inodes, modification times and sizes.
func (v *Value[T]) stamp() (string, error) {
	s := ""
	for _, name := range v.files {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("%s file: %w", v.what, err)
		}
		s += fmt.Sprintf("%s:%d:%d:%d;", name, inode(fi), fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}
