package config

import (
	"strings"
	"testing"
	"time"
)

// --nats-sync takes what nats-server's sync_interval takes, from the flag
// or ROOMCAST_NATS_SYNC, and defaults to always.
func TestNATSSyncSetting(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want NATSSync
	}{
		{nil, "", NATSSync{Always: true}},
		{[]string{"--nats-sync", "1s"}, "", NATSSync{Interval: time.Second}},
		{[]string{"--nats-sync=2m"}, "", NATSSync{Interval: 2 * time.Minute}},
		{[]string{"--nats-sync", "ALWAYS"}, "", NATSSync{Always: true}},
		{nil, "500ms", NATSSync{Interval: 500 * time.Millisecond}},
		{[]string{"--nats-sync", "always"}, "10s", NATSSync{Always: true}}, // the flag wins
	} {
		s, err := parseServe(t, c.args, map[string]string{"ROOMCAST_NATS_SYNC": c.env})
		if err != nil {
			t.Errorf("%v with ROOMCAST_NATS_SYNC=%q: %v", c.args, c.env, err)
			continue
		}
		if s.NATSSync != c.want {
			t.Errorf("%v with ROOMCAST_NATS_SYNC=%q: %+v, want %+v", c.args, c.env, s.NATSSync, c.want)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%v: %v", c.args, err)
		}
	}
}

// A value that is neither always nor a positive duration is refused, and
// the error says what is wanted; from the environment it names the
// variable.
func TestBadNATSSyncIsRefused(t *testing.T) {
	for _, v := range []string{"sometimes", "0", "0s", "-1s", "1", ""} {
		_, err := parseServe(t, []string{"--nats-sync", v}, nil)
		if err == nil || !strings.Contains(err.Error(), `want "always"`) || !strings.Contains(err.Error(), "or a positive duration") {
			t.Errorf("--nats-sync %q: %v, want an error saying what is wanted", v, err)
		}
	}
	_, err := parseServe(t, nil, map[string]string{"ROOMCAST_NATS_SYNC": "never"})
	if err == nil || !strings.Contains(err.Error(), "ROOMCAST_NATS_SYNC") {
		t.Errorf("ROOMCAST_NATS_SYNC=never: %v, want an error naming the variable", err)
	}
}

// With an external NATS the setting is the NATS server's, so serve refuses
// a --nats-sync that could not take effect rather than ignore it.
func TestNATSSyncIsForTheEmbeddedNATS(t *testing.T) {
	c, err := parseServe(t, []string{"--nats", "nats://127.0.0.1:4222", "--nats-sync", "1s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--nats-sync is for the embedded NATS") {
		t.Errorf("--nats-sync with --nats: %v", err)
	}
	c, _ = parseServe(t, []string{"--nats", "nats://127.0.0.1:4222"}, nil)
	if err := c.Validate(); err != nil {
		t.Errorf("--nats with the default --nats-sync: %v", err)
	}
}
