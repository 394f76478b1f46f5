package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

func TestParseKey(t *testing.T) {
	long := strings.Repeat("k", wire.MaxKeyLen)
	for _, tt := range []struct {
		key, deleted string
		want         string
		wantDeleted  bool
		bad          bool
	}{
		{"", "", "", false, false},
		{"worker:w1", "", "worker:w1", false, false},
		{"task:t-7.a_b", "true", "task:t-7.a_b", true, false},
		{long, "", long, false, false},
		{long + "k", "", "", false, true},
		{"", "true", "", false, true},
		{"worker w1", "", "", false, true},
		{"worker:*", "", "", false, true},
		{"worker:>", "", "", false, true},
		{"wörker", "", "", false, true},
		{"w1", "yes", "", false, true},
		{"w1", "TRUE", "", false, true},
		{"w\"1", "", "", false, true},
	} {
		key, deleted, err := wire.ParseKey(tt.key, tt.deleted)
		if tt.bad {
			if !errors.Is(err, wire.ErrBadKey) {
				t.Errorf("ParseKey(%q, %q) = %v, want ErrBadKey", tt.key, tt.deleted, err)
			}
			continue
		}
		if err != nil || key != tt.want || deleted != tt.wantDeleted {
			t.Errorf("ParseKey(%q, %q) = %q, %v, %v; want %q, %v", tt.key, tt.deleted, key, deleted, err, tt.want, tt.wantDeleted)
		}
	}
}

func TestEventFrameCarriesItsKey(t *testing.T) {
	ts := time.Date(2026, 12, 7, 1, 2, 3, 4e6, time.UTC)
	for _, tt := range []struct {
		name string
		ev   wire.Event
		want string
	}{
		{"unkeyed", wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 7, Time: ts, Name: "pool.scaling", Data: json.RawMessage(`{"a":1}`)},
			`{"type":"event","event":"pool.scaling","room":"pool:p1","seq":7,"ts":"2026-12-07T01:02:03.004Z","data":{"a":1}}`},
		{"keyed", wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 8, Time: ts, Name: "worker.status_changed", Key: "worker:w1", Data: json.RawMessage(`{"a":2}`)},
			`{"type":"event","event":"worker.status_changed","room":"pool:p1","seq":8,"ts":"2026-12-07T01:02:03.004Z","key":"worker:w1","data":{"a":2}}`},
		{"deleted, no data", wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 9, Time: ts, Name: "worker.removed", Key: "worker:w1", KeyDeleted: true},
			`{"type":"event","event":"worker.removed","room":"pool:p1","seq":9,"ts":"2026-12-07T01:02:03.004Z","key":"worker:w1","key_deleted":true}`},
	} {
		f := wire.EventFrame(&tt.ev)
		if got := string(f.Payload()); got != tt.want {
			t.Errorf("%s: payload\n %s\nwant\n %s", tt.name, got, tt.want)
		}
		if !json.Valid(f.Payload()) {
			t.Errorf("%s: not JSON", tt.name)
		}
		if f.Room != "pool:p1" || f.Key != tt.ev.Key {
			t.Errorf("%s: frame names key %q/%q, want pool:p1/%s", tt.name, f.Room, f.Key, tt.ev.Key)
		}
		if len(f.Payload()) > wire.EventLen(&tt.ev) {
			t.Errorf("%s: EventLen %d below the message's %d bytes", tt.name, wire.EventLen(&tt.ev), len(f.Payload()))
		}
	}
}

func TestStateResponseFrame(t *testing.T) {
	ts := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	events := []*wire.Event{
		{Room: wire.MustRoom("pool:p1"), Seq: 4, Time: ts, Name: "worker.status_changed", Key: "worker:w1", Data: json.RawMessage(`{"s":"idle"}`)},
		{Room: wire.MustRoom("pool:p1"), Seq: 9, Time: ts, Name: "pool.status_changed", Key: "pool:p1"},
	}
	for _, evs := range [][]*wire.Event{nil, events} {
		f := wire.StateResponseFrame(`a"b`, wire.SubscribeResult{Status: "subscribed", Channel: "pool:p1", Seq: 9, Recovered: true, Epoch: "e-1"},
			wire.AppendStateArray(nil, evs))
		var got struct {
			Type, Event, ID string
			Data            struct {
				Status, Channel, Epoch string
				Seq                    uint64
				Replayed               int
				Recovered              bool
				State                  []struct {
					Type, Event, Room, Key string
					Seq                    uint64
				}
			}
		}
		if err := json.Unmarshal(f.Payload(), &got); err != nil {
			t.Fatalf("not JSON: %v: %s", err, f.Payload())
		}
		if got.Type != "response" || got.Event != "subscribe" || got.ID != `a"b` || got.Data.Seq != 9 || got.Data.Epoch != "e-1" ||
			!got.Data.Recovered || got.Data.Channel != "pool:p1" || len(got.Data.State) != len(evs) {
			t.Fatalf("response %+v from %s", got, f.Payload())
		}
		if !strings.Contains(string(f.Payload()), `"state":[`) {
			t.Errorf("state is not an array: %s", f.Payload())
		}
		for i, e := range got.Data.State {
			if e.Type != "event" || e.Seq != evs[i].Seq || e.Key != evs[i].Key || e.Room != "pool:p1" {
				t.Errorf("state[%d] = %+v", i, e)
			}
		}
	}
}
