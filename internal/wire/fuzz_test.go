package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// protocolCodes are the error codes of docs/protocol.md section 3.
var protocolCodes = map[string]bool{
	"BAD_REQUEST": true, "INVALID_ROOM": true, "UNAUTHENTICATED": true, "FORBIDDEN": true,
	"TOO_MANY_SUBSCRIPTIONS": true, "RATE_LIMITED": true, "UNAVAILABLE": true, "CANCELLED": true, "INTERNAL": true,
}

// Seeds are also committed under testdata/fuzz/<target>/.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"request","event":"subscribe","id":"sub_1","data":{"channel":"pool:p1"}}`,
		`{"type":"request","event":"subscribe","id":"s","data":{"channel":"pool:p1","since":1042}}`,
		`{"type":"request","event":"subscribe","data":{"channel":"pool:p1","since":0}}`,
		`{"type":"request","event":"subscribe","id":"e","data":{"channel":"pool:p1","since":7,"epoch":"lz8k3m2q1x9c-1"}}`,
		`{"type":"request","event":"subscribe","data":{"channel":"pool:p1","epoch":"lz8k3m2q1x9c-1"}}`,
		`{"type":"request","event":"subscribe","data":{"channel":"pool:p1","since":7,"epoch":"Lz8\u00e9"}}`,
		`{"type":"request","event":"unsubscribe","id":"u","data":{"channel":"workflow:demo_workflow_123"}}`,
		`{"type":"request","event":"auth","id":"a","data":{"token":"eyJ.e30.x"}}`,
		`{"type":"ping","id":"x"}`,
		`{"type":"pong"}`,
		`{"type":"request","event":"subscribe","data":{"channel":"pool:*","since":-1}}`,
		`{"type":"request","event":"unsubscribe","data":{"channel":"pool:p1","since":1}}`,
		`{"type":"request","event":"publish"}`,
		`[{"type":"ping"}]`,
		`{"type":"ping"} {}`,
		`not json`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		req, perr := wire.DecodeRequest(p)
		if len(req.ID) > wire.MaxRequestIDLen {
			t.Fatalf("id of %d bytes returned", len(req.ID))
		}
		if perr != nil {
			if !protocolCodes[perr.Code] {
				t.Fatalf("code %q is not a protocol code", perr.Code)
			}
			if perr.Code != wire.CodeBadRequest && perr.Code != wire.CodeInvalidRoom {
				t.Fatalf("DecodeRequest returned %s", perr.Code)
			}
			if perr.Message == "" || len(perr.Message) > 256 {
				t.Fatalf("error message of %d bytes: %.300q", len(perr.Message), perr.Message)
			}
			if m := jsonFrame(t, wire.ErrorFrame(req.Event, req.ID, perr)); m.Type != "error" || m.ID != req.ID {
				t.Fatalf("error frame %+v", m)
			}
			return
		}
		// One JSON value per frame, nothing after it.
		if !json.Valid(p) {
			t.Fatalf("accepted input that is not one JSON value: %q", p)
		}
		switch req.Type {
		case wire.TypePing, wire.TypePong:
			if !req.Room.IsZero() || req.HasSince || req.Since != 0 || req.Epoch != "" || req.Token != "" || req.Event != "" {
				t.Fatalf("%s with request fields: %+v", req.Type, req)
			}
			if m := jsonFrame(t, wire.PongFrame(req.ID)); m.ID != req.ID {
				t.Fatalf("pong id %q, want %q", m.ID, req.ID)
			}
		case wire.TypeRequest:
			switch req.Event {
			case wire.EventSubscribe, wire.EventUnsubscribe:
				if req.Room.IsZero() {
					t.Fatalf("%s without room", req.Event)
				}
				r2, err := wire.ParseRoom(req.Room.String())
				if err != nil || r2 != req.Room {
					t.Fatalf("room %q does not re-parse: %v", req.Room.String(), err)
				}
				if req.Token != "" {
					t.Fatalf("%s with token", req.Event)
				}
				if req.Event == wire.EventUnsubscribe && req.HasSince {
					t.Fatalf("unsubscribe with since")
				}
				if req.Since != 0 && !req.HasSince {
					t.Fatalf("since %d without HasSince", req.Since)
				}
				if req.Epoch != "" && (!req.HasSince || wire.CheckEpoch(req.Epoch) != nil) {
					t.Fatalf("epoch %q accepted without since or malformed", req.Epoch)
				}
			case wire.EventAuth:
				if req.Token == "" || !req.Room.IsZero() || req.HasSince {
					t.Fatalf("bad auth request %+v", req)
				}
			default:
				t.Fatalf("request with event %q accepted", req.Event)
			}
		default:
			t.Fatalf("type %q accepted", req.Type)
		}
	})
}

func FuzzParseRoom(f *testing.F) {
	for _, s := range []string{
		"pool:p1", "workflow:550e8400-e29b-41d4-a716-446655440000", "a:b", "k9_-:A-z_0",
		"pool:p.1", "pool:*", "pool:>", "Pool:p1", "1pool:p1", "pool:a:b", "pool:", ":p1", "pööl:p1",
		"k" + strings.Repeat("a", 31) + ":" + strings.Repeat("I", 128),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		r, err := wire.ParseRoom(s)
		if want := roomRE.MatchString(s); want != (err == nil) {
			t.Fatalf("ParseRoom(%q) error %v; protocol regexp match %v", s, err, want)
		}
		if err != nil {
			if !errors.Is(err, wire.ErrInvalidRoom) || !r.IsZero() {
				t.Fatalf("ParseRoom(%q) = %q, %v", s, r.String(), err)
			}
		} else {
			if r.IsZero() || r.String() != s || r.Kind()+":"+r.ID() != s {
				t.Fatalf("ParseRoom(%q) = %q (kind %q id %q)", s, r.String(), r.Kind(), r.ID())
			}
			if again, err := wire.ParseRoom(r.String()); err != nil || again != r {
				t.Fatalf("re-parse of %q: %v, %v", s, again, err)
			}
			tok := r.Token()
			if strings.Count(tok, ".") != 1 || strings.ContainsAny(tok, "*> \t\r\n") {
				t.Fatalf("Token() %q is not two NATS subject tokens", tok)
			}
			if back, err := wire.RoomFromToken(tok); err != nil || back != r {
				t.Fatalf("RoomFromToken(%q) = %v, %v; want %v", tok, back, err, r)
			}
		}
		// The same input read as subject tokens.
		if rt, err := wire.RoomFromToken(s); err == nil {
			if rt.Token() != s {
				t.Fatalf("RoomFromToken(%q).Token() = %q", s, rt.Token())
			}
		} else if !errors.Is(err, wire.ErrInvalidRoom) {
			t.Fatalf("RoomFromToken(%q): %v does not wrap ErrInvalidRoom", s, err)
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		`{"event": "worker.status_changed", "data": {"worker_id": "w1", "status": "busy", "pool_id": "p1"}}`,
		`{"event":"pool.status_changed","data":{"pool_id":"p1","status":{"worker_count":3,"queue_size":0}}}`,
		`{"event":"workflow.started"}`,
		`{"event":"e","data":null}`,
		`{"event":"e","data":{"s":"\u00e9\"\\"}}`,
		`{"event":"e","data":[1]}`,
		`{"event":"bad name"}`,
		`{"data":{}}`,
		`{"event":"e"}]`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	ts := time.Date(2026, 11, 26, 10, 0, 0, 123e6, time.UTC)
	room := wire.MustRoom("pool:p1")
	f.Fuzz(func(t *testing.T, p []byte) {
		name, data, err := wire.ParsePayload(p)
		if err != nil {
			if !errors.Is(err, wire.ErrBadPayload) || name != "" || data != nil {
				t.Fatalf("ParsePayload error %v with name %q data %q", err, name, data)
			}
			return
		}
		if err := wire.CheckEventName(name); err != nil {
			t.Fatalf("accepted event name %q: %v", name, err)
		}
		if data != nil {
			if !json.Valid(data) || data[0] != '{' {
				t.Fatalf("accepted data %q is not a JSON object", data)
			}
			var c bytes.Buffer
			if json.Compact(&c, data) != nil || !bytes.Equal(c.Bytes(), data) {
				t.Fatalf("data %q is not compact", data)
			}
		}
		fr := wire.EventFrame(&wire.Event{Room: room, Seq: 42, Time: ts, Name: name, Data: data})
		m := jsonFrame(t, fr)
		if m.Type != "event" || m.Event != name || m.Room != "pool:p1" || m.Seq != 42 {
			t.Fatalf("event frame %s decoded to %+v", fr.Payload(), m)
		}
		if data != nil && !json.Valid(m.Data) {
			t.Fatalf("event frame data %q", m.Data)
		}
	})
}

// keyRE is the key grammar (docs/protocol.md, "Keys") as a regular
// expression, written apart from wire.CheckKey's loop.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// ParseKey reads a stored message's key headers, which any publisher can
// set: it accepts exactly the grammar, keeps what it accepts unchanged,
// refuses the rest with ErrBadKey, and what it accepts goes into an event
// message as valid JSON and back out of PublishOptions unchanged.
func FuzzParseKey(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"worker:w1", ""}, {"worker:w1", "true"}, {"task:t-7.a_b", ""},
		{strings.Repeat("k", 128), ""}, {strings.Repeat("k", 129), ""},
		{"", "true"}, {"w1", "yes"}, {"w1", "TRUE"}, {"w1", " true"}, {"worker w1", ""},
		{"worker:*", ""}, {"a>b", ""}, {"w\"1", ""}, {"wörker", ""}, {"w\x00", ""}, {"\xff", "true"},
	} {
		f.Add(s[0], s[1])
	}
	ts := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	f.Fuzz(func(t *testing.T, key, deleted string) {
		got, gotDeleted, err := wire.ParseKey(key, deleted)
		want := key == "" && deleted == "" || keyRE.MatchString(key) && (deleted == "" || deleted == "true")
		if want != (err == nil) {
			t.Fatalf("ParseKey(%q, %q) error %v; grammar says %v", key, deleted, err, want)
		}
		if err != nil {
			if !errors.Is(err, wire.ErrBadKey) || got != "" || gotDeleted {
				t.Fatalf("ParseKey(%q, %q) = %q, %v, %v", key, deleted, got, gotDeleted, err)
			}
			return
		}
		if got != key || gotDeleted != (deleted == "true") {
			t.Fatalf("ParseKey(%q, %q) = %q, %v", key, deleted, got, gotDeleted)
		}
		o := wire.PublishOptions{Key: got, KeyDeleted: gotDeleted}
		if k, d := o.KeyHeaders(); o.CheckKey() != nil || k != key || d != deleted {
			t.Fatalf("PublishOptions %+v: headers %q %q, check %v; want %q %q", o, k, d, o.CheckKey(), key, deleted)
		}
		ev := wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 9, Time: ts, Name: "e", Key: got, KeyDeleted: gotDeleted}
		var m struct {
			Key        string `json:"key"`
			KeyDeleted bool   `json:"key_deleted"`
		}
		fr := wire.EventFrame(&ev)
		jsonFrame(t, fr)
		if err := json.Unmarshal(fr.Payload(), &m); err != nil || m.Key != got || m.KeyDeleted != (got != "" && gotDeleted) {
			t.Fatalf("event message %s: %+v, %v", fr.Payload(), m, err)
		}
	})
}

// jsonFrame checks f is a well-formed text frame carrying one valid UTF-8
// JSON object, and decodes it.
func jsonFrame(t *testing.T, f *wire.Frame) wire.Message {
	t.Helper()
	h, err := ws.ReadHeader(bytes.NewReader(f.Bytes()))
	if err != nil || !h.Fin || h.OpCode != ws.OpText || h.Masked || h.Length != int64(len(f.Payload())) {
		t.Fatalf("frame header %+v, %v; payload %d bytes", h, err, len(f.Payload()))
	}
	p := f.Payload()
	if !utf8.Valid(p) {
		t.Fatalf("text frame is not valid UTF-8: %q", p)
	}
	var m wire.Message
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("frame payload %q: %v", p, err)
	}
	return m
}
