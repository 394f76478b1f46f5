package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// checkFrame parses f as the client would and returns its payload: one
// unmasked, final text frame whose header length matches, valid UTF-8.
func checkFrame(t *testing.T, f *wire.Frame) []byte {
	t.Helper()
	r := bytes.NewReader(f.Bytes())
	h, err := ws.ReadHeader(r)
	if err != nil {
		t.Fatalf("ws.ReadHeader: %v", err)
	}
	if !h.Fin || h.OpCode != ws.OpText || h.Masked || h.Rsv != 0 {
		t.Fatalf("header %+v, want an unmasked FIN text frame", h)
	}
	if h.Length != int64(r.Len()) {
		t.Fatalf("header length %d, %d bytes follow", h.Length, r.Len())
	}
	if f.Len() != len(f.Bytes()) {
		t.Errorf("Len() = %d, len(Bytes()) = %d", f.Len(), len(f.Bytes()))
	}
	p, _ := io.ReadAll(r)
	if !bytes.Equal(p, f.Payload()) {
		t.Fatalf("Payload() %q, frame carries %q", f.Payload(), p)
	}
	if !utf8.Valid(p) {
		t.Errorf("text frame payload is not valid UTF-8: %q", p)
	}
	return p
}

// decode checks f and unmarshals its payload into a Message and a key set.
func decode(t *testing.T, f *wire.Frame) (wire.Message, map[string]json.RawMessage) {
	t.Helper()
	p := checkFrame(t, f)
	var m wire.Message
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("payload %s: %v", p, err)
	}
	if err := json.Unmarshal(p, &keys); err != nil {
		t.Fatalf("payload %s: %v", p, err)
	}
	return m, keys
}

func TestFrameHeader(t *testing.T) {
	tests := []struct{ n, hdr int }{
		{0, 2}, {1, 2}, {125, 2}, {126, 4}, {127, 4}, {65535, 4}, {65536, 10}, {70000, 10},
	}
	for _, tt := range tests {
		payload := bytes.Repeat([]byte("a"), tt.n)
		f := wire.NewTextFrame(payload)
		checkFrame(t, f)
		if f.Len() != tt.n+tt.hdr {
			t.Errorf("n=%d: Len() = %d, want %d (shortest header)", tt.n, f.Len(), tt.n+tt.hdr)
		}
		if f.Bytes()[0] != 0x81 {
			t.Errorf("n=%d: first byte %#x, want 0x81", tt.n, f.Bytes()[0])
		}
		if f.Seq != 0 {
			t.Errorf("n=%d: Seq = %d for a non-event frame", tt.n, f.Seq)
		}
		if tt.n > 0 {
			payload[0] = 'b'
			if f.Payload()[0] != 'a' {
				t.Errorf("n=%d: NewTextFrame did not copy the payload", tt.n)
			}
		}
	}
}

func TestEventFrameHeaderLengths(t *testing.T) {
	// The EventFrame path writes the header in place; check it at each size class.
	base := len(wire.EventFrame(&wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 1, Name: "e", Data: json.RawMessage(`{"k":""}`)}).Payload())
	for _, want := range []int{100, 125, 126, 65535, 65536, 70000} {
		data := json.RawMessage(`{"k":"` + strings.Repeat("x", want-base) + `"}`)
		f := wire.EventFrame(&wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 1, Name: "e", Data: data})
		if len(f.Payload()) != want {
			t.Fatalf("test setup: payload %d bytes, want %d", len(f.Payload()), want)
		}
		m, _ := decode(t, f)
		if !bytes.Equal(m.Data, data) {
			t.Errorf("size %d: data did not round trip", want)
		}
	}
}

func TestEventFrame(t *testing.T) {
	room := wire.MustRoom("pool:p1")
	ts := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		ev     wire.Event
		wantTS string // "" means no ts key
	}{
		{"protocol example", wire.Event{Room: room, Seq: 1042, Time: ts, Name: "worker.status_changed",
			Data: json.RawMessage(`{"worker_id":"w1","status":"busy","pool_id":"p1"}`)}, "2026-11-26T10:00:00.123Z"},
		{"no data", wire.Event{Room: room, Seq: 5, Time: ts, Name: "pool.scaling"}, "2026-11-26T10:00:00.123Z"},
		{"empty data object", wire.Event{Room: room, Seq: 6, Time: ts, Name: "x", Data: json.RawMessage(`{}`)}, "2026-11-26T10:00:00.123Z"},
		{"no time", wire.Event{Room: room, Seq: 7, Name: "x"}, ""},
		{"seq 0", wire.Event{Room: room, Seq: 0, Time: ts, Name: "x"}, "2026-11-26T10:00:00.123Z"},
		{"max seq", wire.Event{Room: room, Seq: 1<<64 - 1, Time: ts, Name: "x", Data: json.RawMessage(`{"a":1}`)}, "2026-11-26T10:00:00.123Z"},
		{"other zone to UTC", wire.Event{Room: room, Seq: 8, Time: time.Date(2026, 1, 1, 0, 30, 0, 0, paris), Name: "x"}, "2025-12-31T23:30:00.000Z"},
		{"whole second keeps millis", wire.Event{Room: room, Seq: 9, Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Name: "x"}, "2026-03-01T12:00:00.000Z"},
		{"millis truncated, not rounded", wire.Event{Room: room, Seq: 10, Time: time.Date(2026, 3, 1, 12, 0, 0, 999999999, time.UTC), Name: "x"}, "2026-03-01T12:00:00.999Z"},
		{"negative offset zone", wire.Event{Room: room, Seq: 11, Time: time.Date(2026, 12, 31, 20, 0, 0, 5e6, time.FixedZone("X", -5*3600)), Name: "x"}, "2027-01-01T01:00:00.005Z"},
		{"uuid room", wire.Event{Room: wire.MustRoom("workflow:550e8400-e29b-41d4-a716-446655440000"), Seq: 12, Time: ts, Name: "workflow.completed",
			Data: json.RawMessage(`{"workflow_id":"550e8400-e29b-41d4-a716-446655440000","result":{"ok":true,"s":"\u00e9\"<>"}}`)}, "2026-11-26T10:00:00.123Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := wire.EventFrame(&tt.ev)
			m, keys := decode(t, f)
			if m.Type != "event" || m.Event != tt.ev.Name || m.Room != tt.ev.Room.String() || m.Seq != tt.ev.Seq || m.ID != "" {
				t.Errorf("decoded %+v from %s", m, f.Payload())
			}
			if f.Seq != tt.ev.Seq {
				t.Errorf("Frame.Seq = %d, want %d", f.Seq, tt.ev.Seq)
			}
			if _, ok := keys["seq"]; !ok {
				t.Errorf("no seq key in %s", f.Payload())
			}
			if m.TS != tt.wantTS {
				t.Errorf("ts %q, want %q", m.TS, tt.wantTS)
			}
			if _, ok := keys["ts"]; ok != (tt.wantTS != "") {
				t.Errorf("ts key present = %v in %s", ok, f.Payload())
			}
			if tt.wantTS != "" {
				got, err := time.Parse(time.RFC3339Nano, m.TS)
				if err != nil || !got.Equal(tt.ev.Time.Truncate(time.Millisecond)) {
					t.Errorf("ts %q parses to %v (%v), want %v", m.TS, got, err, tt.ev.Time.Truncate(time.Millisecond))
				}
			}
			_, hasData := keys["data"]
			if hasData != (len(tt.ev.Data) > 0) || !bytes.Equal(m.Data, tt.ev.Data) {
				t.Errorf("data %s (key present %v), want %s", m.Data, hasData, tt.ev.Data)
			}
		})
	}
}

func TestEventFrameExactBytes(t *testing.T) {
	ev := wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 1042, Time: time.Date(2026, 11, 26, 10, 0, 0, 123e6, time.UTC),
		Name: "worker.status_changed", Data: json.RawMessage(`{"worker_id":"w1","status":"busy","pool_id":"p1"}`)}
	want := `{"type":"event","event":"worker.status_changed","room":"pool:p1","seq":1042,"ts":"2026-11-26T10:00:00.123Z","data":{"worker_id":"w1","status":"busy","pool_id":"p1"}}`
	if got := string(wire.EventFrame(&ev).Payload()); got != want {
		t.Errorf("EventFrame =\n %s\nwant\n %s", got, want)
	}
}

func TestResponseFrames(t *testing.T) {
	t.Run("subscribe", func(t *testing.T) {
		res := wire.SubscribeResult{Status: "subscribed", Channel: "pool:p1", Seq: 0, Replayed: 0, Recovered: false}
		m, _ := decode(t, wire.ResponseFrame("subscribe", "sub_1", res))
		if m.Type != "response" || m.Event != "subscribe" || m.ID != "sub_1" {
			t.Errorf("envelope %+v", m)
		}
		var got wire.SubscribeResult
		var keys map[string]json.RawMessage
		if json.Unmarshal(m.Data, &got) != nil || json.Unmarshal(m.Data, &keys) != nil || got != res {
			t.Errorf("data %s, want %+v", m.Data, res)
		}
		// The protocol lists every field; zero values are sent, not omitted.
		for _, k := range []string{"status", "channel", "seq", "replayed", "recovered", "epoch"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("subscribe response data lacks %q: %s", k, m.Data)
			}
		}
	})
	t.Run("subscribe resumed", func(t *testing.T) {
		res := wire.SubscribeResult{Status: "subscribed", Channel: "pool:p1", Seq: 1 << 60, Replayed: 17, Recovered: true, Epoch: "lz8k3m2q1x9c-1"}
		m, _ := decode(t, wire.ResponseFrame("subscribe", "s", res))
		var got wire.SubscribeResult
		if json.Unmarshal(m.Data, &got) != nil || got != res {
			t.Errorf("data %s, want %+v", m.Data, res)
		}
	})
	t.Run("unsubscribe", func(t *testing.T) {
		res := wire.UnsubscribeResult{Status: "unsubscribed", Channel: "pool:p1"}
		m, _ := decode(t, wire.ResponseFrame("unsubscribe", "u1", res))
		var got wire.UnsubscribeResult
		if m.Type != "response" || m.Event != "unsubscribe" || m.ID != "u1" || json.Unmarshal(m.Data, &got) != nil || got != res {
			t.Errorf("got %+v / %s", m, m.Data)
		}
	})
	t.Run("auth", func(t *testing.T) {
		res := wire.AuthResult{Status: "authenticated", UserID: "u-1", ExpiresAt: "2026-11-26T11:00:00Z"}
		m, _ := decode(t, wire.ResponseFrame("auth", "a1", res))
		var got wire.AuthResult
		if m.Type != "response" || m.Event != "auth" || m.ID != "a1" || json.Unmarshal(m.Data, &got) != nil || got != res {
			t.Errorf("got %+v / %s", m, m.Data)
		}
	})
	t.Run("no id, no data", func(t *testing.T) {
		m, keys := decode(t, wire.ResponseFrame("subscribe", "", nil))
		if _, ok := keys["id"]; ok || m.Type != "response" {
			t.Errorf("got %+v", keys)
		}
		if _, ok := keys["data"]; ok {
			t.Errorf("nil data encoded: %+v", keys)
		}
	})
}

func TestErrorFrame(t *testing.T) {
	tests := []struct {
		event, id string
		err       *wire.Error
	}{
		{"subscribe", "sub_1", wire.Errorf(wire.CodeForbidden, "not authorized to subscribe to %s", "pool:p1")},
		{"", "", wire.Errorf(wire.CodeBadRequest, "not a JSON message object")},
		{"auth", "a\"1</script>", wire.Errorf(wire.CodeUnauthenticated, "quotes \" backslash \\ <tag> & é \x01")},
		{"subscribe", "x", &wire.Error{Code: wire.CodeUnavailable, Message: ""}},
	}
	for _, tt := range tests {
		m, keys := decode(t, wire.ErrorFrame(tt.event, tt.id, tt.err))
		var d wire.ErrorData
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatalf("data %s: %v", m.Data, err)
		}
		if m.Type != "error" || m.Event != tt.event || m.ID != tt.id || d.Code != tt.err.Code || d.Message != tt.err.Message {
			t.Errorf("ErrorFrame(%q, %q, %v) decoded to %+v %+v", tt.event, tt.id, tt.err, m, d)
		}
		if _, ok := keys["event"]; ok != (tt.event != "") {
			t.Errorf("event key present = %v for event %q", ok, tt.event)
		}
	}
}

func TestPongAndDrainingFrames(t *testing.T) {
	m, keys := decode(t, wire.PongFrame("x"))
	if m.Type != "pong" || m.ID != "x" || len(keys) != 2 {
		t.Errorf("PongFrame(x) = %s", wire.PongFrame("x").Payload())
	}
	if got := string(wire.PongFrame("").Payload()); got != `{"type":"pong"}` {
		t.Errorf("PongFrame(\"\") = %s", got)
	}
	// A pong echoes whatever id DecodeRequest accepted.
	req, perr := wire.DecodeRequest([]byte(`{"type":"ping","id":"\u00e9\"\\\n"}`))
	if perr != nil {
		t.Fatal(perr)
	}
	if m, _ := decode(t, wire.PongFrame(req.ID)); m.ID != "é\"\\\n" {
		t.Errorf("pong id %q", m.ID)
	}
	m, keys = decode(t, wire.DrainingFrame())
	if m.Type != "event" || m.Event != "server.draining" || len(keys) != 2 {
		t.Errorf("DrainingFrame = %s", wire.DrainingFrame().Payload())
	}
}

func TestParsePayload(t *testing.T) {
	example := `{"event": "worker.status_changed", "data": {"worker_id": "w1", "status": "busy", "pool_id": "p1"}}`
	tests := []struct {
		name     string
		in       string
		wantName string
		wantData string // compacted; "" for nil
		bad      bool
	}{
		{"protocol example", example, "worker.status_changed", `{"worker_id":"w1","status":"busy","pool_id":"p1"}`, false},
		{"whitespace compacted", "{\n  \"event\" : \"pool.scaling\",\n  \"data\" : {\n    \"a\" : [ 1 , 2 ],\t\"b\" : { \"c\" : \"x y\" }\n  }\n}\n",
			"pool.scaling", `{"a":[1,2],"b":{"c":"x y"}}`, false},
		{"no data", `{"event":"workflow.started"}`, "workflow.started", "", false},
		{"null data", `{"event":"workflow.started","data":null}`, "workflow.started", "", false},
		{"empty data", `{"event":"e","data":{}}`, "e", `{}`, false},
		{"escapes kept", `{"event":"e","data":{"s":"a\"b\\c\u00e9\n"}}`, "e", `{"s":"a\"b\\c\u00e9\n"}`, false},
		{"utf8 kept", `{"event":"e","data":{"s":"日本 é"}}`, "e", `{"s":"日本 é"}`, false},
		{"extra fields ignored", `{"event":"e","data":{"a":1},"other":2}`, "e", `{"a":1}`, false},
		{"event name chars", `{"event":"A-z_0.9:x"}`, "A-z_0.9:x", "", false},
		{"event 128 chars", `{"event":"` + strings.Repeat("e", 128) + `"}`, strings.Repeat("e", 128), "", false},

		{"empty", ``, "", "", true},
		{"not JSON", `worker.status_changed`, "", "", true},
		{"truncated", `{"event":"e","data":{"a":1}`, "", "", true},
		{"trailing data", `{"event":"e"} {"event":"f"}`, "", "", true},
		{"trailing bracket", `{"event":"e"}]`, "", "", true},
		{"array", `[{"event":"e"}]`, "", "", true},
		{"string", `"e"`, "", "", true},
		{"null", `null`, "", "", true},
		{"missing event", `{"data":{"a":1}}`, "", "", true},
		{"empty event", `{"event":"","data":{}}`, "", "", true},
		{"event number", `{"event":5}`, "", "", true},
		{"event space", `{"event":"worker status"}`, "", "", true},
		{"event quote", `{"event":"a\"b"}`, "", "", true},
		{"event slash", `{"event":"a/b"}`, "", "", true},
		{"event unicode", `{"event":"évent"}`, "", "", true},
		{"event 129 chars", `{"event":"` + strings.Repeat("e", 129) + `"}`, "", "", true},
		{"data array", `{"event":"e","data":[1]}`, "", "", true},
		{"data string", `{"event":"e","data":"x"}`, "", "", true},
		{"data number", `{"event":"e","data":1}`, "", "", true},
		{"data bool", `{"event":"e","data":true}`, "", "", true},
		// BUG: encoding/json accepts invalid UTF-8 inside strings and
		// json.Compact copies it, so it reaches clients in a text frame, which
		// RFC 6455 requires to be UTF-8 (browsers fail the connection, 1007).
		{"data invalid utf8", "{\"event\":\"e\",\"data\":{\"s\":\"\xff\"}}", "", "", true},
		{"data invalid utf8 key", "{\"event\":\"e\",\"data\":{\"\xc3\":1}}", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, data, err := wire.ParsePayload([]byte(tt.in))
			if tt.bad {
				if err == nil {
					t.Fatalf("ParsePayload accepted it: name %q data %q", name, data)
				}
				if !errors.Is(err, wire.ErrBadPayload) {
					t.Errorf("error %v does not wrap ErrBadPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePayload: %v", err)
			}
			if name != tt.wantName {
				t.Errorf("name %q, want %q", name, tt.wantName)
			}
			if (tt.wantData == "") != (data == nil) || string(data) != tt.wantData {
				t.Errorf("data %q (nil %v), want %q", data, data == nil, tt.wantData)
			}
			// What the bus does next: the event goes out as a frame.
			f := wire.EventFrame(&wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 3, Name: name, Data: data})
			if m, _ := decode(t, f); m.Event != name || !bytes.Equal(m.Data, data) {
				t.Errorf("frame %s", f.Payload())
			}
		})
	}
}

func TestParsePayloadErrorsDoNotEchoData(t *testing.T) {
	secret := strings.Repeat("s3cr3t", 50)
	for _, in := range []string{
		`{"event":"e","data":{"k":"` + secret + `"},}`,
		`{"event":"` + secret + ` "}`,
		`{"event":"e","data":"` + secret + `"}`,
	} {
		_, _, err := wire.ParsePayload([]byte(in))
		if err == nil {
			t.Fatalf("ParsePayload(%.40q...) accepted", in)
		}
		if strings.Contains(err.Error(), secret[:60]) {
			t.Errorf("error echoes the payload: %.100q", err.Error())
		}
	}
}
