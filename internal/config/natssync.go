package config

import (
	"fmt"
	"strings"
	"time"
)

// NATSSync is when the embedded NATS forces what JetStream stored to disk
// (fsync): before every acknowledgement ("always") or every Interval. A
// stored event is in the operating system's cache at once, so it survives
// the process whatever this says; only what was fsynced survives a power
// loss or a kernel crash. It is nats-server's sync_interval, and takes the
// same values.
type NATSSync struct {
	Always   bool
	Interval time.Duration // when not Always
}

// DefaultNATSSync is --nats-sync's default: the embedded server is a
// single node with no replica to recover from, so every acknowledged event
// is on disk before the worker hears it was stored. BenchmarkPublishSync
// (internal/natsembed) measures what it costs; docs/deployment.md, "Durability",
// quotes it.
var DefaultNATSSync = NATSSync{Always: true}

// syncAlways is the value of NATSSync.Always in a flag or configuration.
const syncAlways = "always"

// String is the flag's form of s: "always" or a duration.
func (s *NATSSync) String() string {
	if s.Always {
		return syncAlways
	}
	return s.Interval.String()
}

// Set parses "always" or a positive duration.
func (s *NATSSync) Set(v string) error {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, syncAlways) {
		*s = NATSSync{Always: true}
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want %q (fsync before every acknowledgement) or a positive duration such as 1s or 2m (fsync that often)", v, syncAlways)
	}
	*s = NATSSync{Interval: d}
	return nil
}
