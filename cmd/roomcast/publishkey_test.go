package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// publish stores each event with the key its flags say: the pool
// vocabulary's by default, --key's on any event, none with --no-key,
// ended with --key-deleted; the stored message's headers say so.
func TestPublishSetsTheKey(t *testing.T) {
	_, nc := bustest.NewConn(t)
	url := nc.ConnectedUrl()
	status := `{"worker_id":"w1","status":"busy","pool_id":"p1"}`
	for _, c := range []struct {
		vars    map[string]string
		args    []string
		key     string
		deleted bool
	}{
		{nil, []string{"pool:p1", "worker.status_changed", status}, "worker:w1", false},
		{nil, []string{"pool:p1", "worker.removed", `{"worker_id":"w1","pool_id":"p1"}`}, "worker:w1", true},
		{nil, []string{"pool:p1", "pool.scaling", `{"pool_id":"p1","event_type":"worker_removed","worker_id":"w2"}`}, "worker:w2", true},
		{nil, []string{"pool:p1", "pool.scaling", `{"pool_id":"p1","event_type":"scaled_up"}`}, "", false},
		{nil, []string{"pool:p1", "custom.event", `{"n":1}`}, "", false},
		{nil, []string{"--key", "node:n1", "pool:p1", "custom.event", `{"n":1}`}, "node:n1", false},
		{nil, []string{"--key", "worker:w9", "pool:p1", "worker.status_changed", status}, "worker:w9", false},
		{nil, []string{"--key-deleted", "pool:p1", "worker.status_changed", status}, "worker:w1", true},
		{nil, []string{"--key", "job:j1", "--key-deleted", "pool:p1", "custom.event"}, "job:j1", true},
		{nil, []string{"--no-key", "pool:p1", "worker.status_changed", status}, "", false},
		{nil, []string{"--no-key", "pool:p1", "task.progress", `{"pct":5}`}, "", false},
		{nil, []string{"pool:p1", "task.progress", `{"pct":5}`}, "", false},
		{nil, []string{"pool:p1", "task.progress", `{"task_id":"t3","pct":5}`}, "task:t3", false},
		{map[string]string{"ROOMCAST_KEY": "env:k1", "ROOMCAST_KEY_DELETED": "true"}, []string{"pool:p1", "custom.event"}, "env:k1", true},
	} {
		var out, errb servertest.SyncBuffer
		args := append([]string{"publish", "--nats", url}, c.args...)
		if code := runWithEnv(t.Context(), &out, &errb, "", c.vars, args...); code != 0 {
			t.Fatalf("roomcast %q: exit %d: %s", args, code, errb.String())
		}
		seq, err := strconv.ParseUint(strings.TrimSpace(out.String()), 10, 64)
		if err != nil {
			t.Fatalf("roomcast %q printed %q", args, out.String())
		}
		t.Logf("%q: seq %d", args, seq)
		bustest.CheckKey(t, bustest.Stored(t, nc, seq), c.key, c.deleted)
	}
}

// Key flags that contradict each other, a bad key, and an event the
// vocabulary keys without a usable id are usage errors, found before
// anything is sent (the NATS given is unreachable: a send would exit 1).
func TestPublishKeyUsageErrors(t *testing.T) {
	status := `{"worker_id":"w1","status":"busy","pool_id":"p1"}`
	for _, c := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, []string{"--no-key", "--key", "worker:w1", "pool:p1", "worker.status_changed", status}, "--no-key"},
		{nil, []string{"--no-key", "--key-deleted", "pool:p1", "worker.status_changed", status}, "--no-key"},
		{nil, []string{"--key-deleted", "pool:p1", "custom.event", `{"n":1}`}, "--key-deleted ends the event's key, but custom.event has none"},
		{nil, []string{"--key-deleted", "pool:p1", "pool.scaling", `{"pool_id":"p1","event_type":"scaled_up"}`}, "has none"},
		{nil, []string{"--key", "", "pool:p1", "custom.event"}, "missing key"},
		{nil, []string{"--key", "worker w1", "pool:p1", "custom.event"}, `--key "worker w1": key has ' '`},
		{nil, []string{"--key", strings.Repeat("k", 129), "pool:p1", "custom.event"}, "key longer than 128"},
		{map[string]string{"ROOMCAST_KEY": "a*b"}, []string{"pool:p1", "custom.event"}, `--key "a*b"`},
		{map[string]string{"ROOMCAST_NO_KEY": "true"}, []string{"--key", "k", "pool:p1", "custom.event"}, "--no-key"},
		{nil, []string{"pool:p1", "worker.status_changed", `{"worker_id":"w 1","status":"busy","pool_id":"p1"}`}, `worker_id "w 1" makes no valid key`},
		{nil, []string{"pool:p1", "worker.status_changed", `{"worker_id":7,"status":"busy","pool_id":"p1"}`}, "worker_id must be a string"},
	} {
		var out, errb servertest.SyncBuffer
		args := append([]string{"publish", "--nats", "nats://127.0.0.1:1", "--timeout", "2s"}, c.args...)
		code := runWithEnv(t.Context(), &out, &errb, "", c.vars, args...)
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("roomcast %q (env %v): exit %d, stderr %q; want 2 and %q", args, c.vars, code, errb.String(), c.want)
		}
	}
}
