package wire_test

import (
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/wire"
)

func TestDecodeRequestValid(t *testing.T) {
	p1 := wire.MustRoom("pool:p1")
	id128 := strings.Repeat("i", wire.MaxRequestIDLen)
	tests := []struct {
		name string
		in   string
		want wire.Request
	}{
		{"subscribe",
			`{"type":"request","event":"subscribe","id":"sub_1","data":{"channel":"pool:p1"}}`,
			wire.Request{Type: "request", Event: "subscribe", ID: "sub_1", Room: p1}},
		{"subscribe since",
			`{"type":"request","event":"subscribe","id":"sub_2","data":{"channel":"pool:p1","since":1042}}`,
			wire.Request{Type: "request", Event: "subscribe", ID: "sub_2", Room: p1, Since: 1042, HasSince: true}},
		{"subscribe since 0",
			`{"type":"request","event":"subscribe","id":"s","data":{"channel":"pool:p1","since":0}}`,
			wire.Request{Type: "request", Event: "subscribe", ID: "s", Room: p1, Since: 0, HasSince: true}},
		{"subscribe since max uint64",
			`{"type":"request","event":"subscribe","data":{"channel":"pool:p1","since":18446744073709551615}}`,
			wire.Request{Type: "request", Event: "subscribe", Room: p1, Since: 1<<64 - 1, HasSince: true}},
		{"subscribe since null is live only",
			`{"type":"request","event":"subscribe","data":{"channel":"pool:p1","since":null}}`,
			wire.Request{Type: "request", Event: "subscribe", Room: p1}},
		{"subscribe since with epoch",
			`{"type":"request","event":"subscribe","id":"e","data":{"channel":"pool:p1","since":9,"epoch":"lz8k3m2q1x9c-1"}}`,
			wire.Request{Type: "request", Event: "subscribe", ID: "e", Room: p1, Since: 9, HasSince: true, Epoch: "lz8k3m2q1x9c-1"}},
		{"subscribe epoch null is no epoch",
			`{"type":"request","event":"subscribe","data":{"channel":"pool:p1","since":9,"epoch":null}}`,
			wire.Request{Type: "request", Event: "subscribe", Room: p1, Since: 9, HasSince: true}},
		{"subscribe uuid room, no id",
			`{"type":"request","event":"subscribe","data":{"channel":"workflow:550e8400-e29b-41d4-a716-446655440000"}}`,
			wire.Request{Type: "request", Event: "subscribe", Room: wire.MustRoom("workflow:550e8400-e29b-41d4-a716-446655440000")}},
		{"subscribe fields in any order, whitespace",
			" \n{ \"data\" : { \"since\" : 7 , \"channel\" : \"pool:p1\" } , \"id\" : \"x\" , \"event\" : \"subscribe\" , \"type\" : \"request\" }\r\n",
			wire.Request{Type: "request", Event: "subscribe", ID: "x", Room: p1, Since: 7, HasSince: true}},
		{"subscribe with state and conflate",
			`{"type":"request","event":"subscribe","id":"st","data":{"channel":"pool:p1","state":true,"conflate":true}}`,
			wire.Request{Type: "request", Event: "subscribe", ID: "st", Room: p1, State: true, Conflate: true}},
		{"subscribe state false, conflate null",
			`{"type":"request","event":"subscribe","data":{"channel":"pool:p1","state":false,"conflate":null,"since":3}}`,
			wire.Request{Type: "request", Event: "subscribe", Room: p1, Since: 3, HasSince: true}},
		{"unknown fields ignored",
			`{"type":"request","event":"subscribe","id":"u","extra":[1,2],"data":{"channel":"pool:p1","other":{}}}`,
			wire.Request{Type: "request", Event: "subscribe", ID: "u", Room: p1}},
		{"unsubscribe",
			`{"type":"request","event":"unsubscribe","id":"u1","data":{"channel":"pool:p1"}}`,
			wire.Request{Type: "request", Event: "unsubscribe", ID: "u1", Room: p1}},
		{"auth",
			`{"type":"request","event":"auth","id":"a1","data":{"token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}}`,
			wire.Request{Type: "request", Event: "auth", ID: "a1", Token: "eyJhbGciOiJIUzI1NiJ9.e30.sig"}},
		{"ping with id", `{"type":"ping","id":"x"}`, wire.Request{Type: "ping", ID: "x"}},
		{"ping without id", `{"type":"ping"}`, wire.Request{Type: "ping"}},
		{"pong", `{"type":"pong"}`, wire.Request{Type: "pong"}},
		{"pong with id", `{"type":"pong","id":"y"}`, wire.Request{Type: "pong", ID: "y"}},
		{"id at limit", `{"type":"ping","id":"` + id128 + `"}`, wire.Request{Type: "ping", ID: id128}},
		{"id with escapes", `{"type":"ping","id":"a\"b\u00e9"}`, wire.Request{Type: "ping", ID: "a\"bé"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.DecodeRequest([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if got != tt.want {
				t.Errorf("DecodeRequest =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRequestInvalid(t *testing.T) {
	const bad, inv = wire.CodeBadRequest, wire.CodeInvalidRoom
	sub := func(data string) string {
		return `{"type":"request","event":"subscribe","id":"r1","data":` + data + `}`
	}
	tests := []struct {
		name      string
		in        string
		code      string
		event, id string // echoed back so the client can correlate
	}{
		// Not one JSON object.
		{"empty", ``, bad, "", ""},
		{"whitespace", " \n", bad, "", ""},
		{"not JSON", `hello`, bad, "", ""},
		{"truncated", `{"type":"ping"`, bad, "", ""},
		{"array", `[]`, bad, "", ""},
		{"array of message", `[{"type":"ping","id":"x"}]`, bad, "", ""},
		{"string", `"ping"`, bad, "", ""},
		{"number", `42`, bad, "", ""},
		{"null", `null`, bad, "", ""},
		{"true", `true`, bad, "", ""},
		{"two objects", `{"type":"ping","id":"x"}{"type":"ping","id":"y"}`, bad, "", ""},
		{"trailing word", `{"type":"ping","id":"x"} x`, bad, "", ""},
		{"trailing comma", `{"type":"ping","id":"x"},`, bad, "", ""},
		// BUG: json.Decoder.More reports false before ']' and '}', so these pass.
		{"trailing bracket", `{"type":"ping","id":"x"}]`, bad, "", ""},
		{"trailing brace", `{"type":"ping","id":"x"}}`, bad, "", ""},
		{"type not a string", `{"type":1}`, bad, "", ""},
		{"id not a string", `{"type":"ping","id":5}`, bad, "", ""},
		// Type.
		{"missing type", `{"id":"m1"}`, bad, "", "m1"},
		{"empty type", `{"type":"","id":"m2"}`, bad, "", "m2"},
		{"unknown type", `{"type":"hello","id":"m3"}`, bad, "", "m3"},
		{"uppercase type", `{"type":"PING","id":"m4"}`, bad, "", "m4"},
		{"server type event", `{"type":"event","event":"subscribe","id":"m5"}`, bad, "subscribe", "m5"},
		{"server type response", `{"type":"response","id":"m6"}`, bad, "", "m6"},
		{"server type error", `{"type":"error","id":"m7"}`, bad, "", "m7"},
		// Event.
		{"missing event", `{"type":"request","id":"e1","data":{"channel":"pool:p1"}}`, bad, "", "e1"},
		{"unknown event", `{"type":"request","event":"publish","id":"e2","data":{"channel":"pool:p1"}}`, bad, "publish", "e2"},
		{"uppercase event", `{"type":"request","event":"Subscribe","id":"e3","data":{"channel":"pool:p1"}}`, bad, "Subscribe", "e3"},
		// Data.
		{"missing data", `{"type":"request","event":"subscribe","id":"r1"}`, bad, "subscribe", "r1"},
		{"data null", sub(`null`), bad, "subscribe", "r1"},
		{"data array", sub(`[]`), bad, "subscribe", "r1"},
		{"data string", sub(`"pool:p1"`), bad, "subscribe", "r1"},
		{"state a string", sub(`{"channel":"pool:p1","state":"true"}`), bad, "subscribe", "r1"},
		{"state a number", sub(`{"channel":"pool:p1","state":1}`), bad, "subscribe", "r1"},
		{"conflate an object", sub(`{"channel":"pool:p1","conflate":{}}`), bad, "subscribe", "r1"},
		{"conflate on unsubscribe", `{"type":"request","event":"unsubscribe","id":"r1","data":{"channel":"pool:p1","conflate":true}}`, bad, "unsubscribe", "r1"},
		{"state on rooms", `{"type":"request","event":"rooms","id":"r1","data":{"state":true}}`, bad, "rooms", "r1"},
		{"missing channel", sub(`{}`), bad, "subscribe", "r1"},
		{"channel null", sub(`{"channel":null}`), bad, "subscribe", "r1"},
		{"channel number", sub(`{"channel":1}`), bad, "subscribe", "r1"},
		{"channel object", sub(`{"channel":{}}`), bad, "subscribe", "r1"},
		{"unsubscribe missing channel", `{"type":"request","event":"unsubscribe","id":"u","data":{}}`, bad, "unsubscribe", "u"},
		// Since.
		{"since negative", sub(`{"channel":"pool:p1","since":-1}`), bad, "subscribe", "r1"},
		{"since minus zero", sub(`{"channel":"pool:p1","since":-0}`), bad, "subscribe", "r1"},
		{"since float", sub(`{"channel":"pool:p1","since":1.5}`), bad, "subscribe", "r1"},
		{"since integral float", sub(`{"channel":"pool:p1","since":5.0}`), bad, "subscribe", "r1"},
		{"since exponent", sub(`{"channel":"pool:p1","since":1e3}`), bad, "subscribe", "r1"},
		{"since huge", sub(`{"channel":"pool:p1","since":18446744073709551616}`), bad, "subscribe", "r1"},
		{"since very huge", sub(`{"channel":"pool:p1","since":1e400}`), bad, "subscribe", "r1"},
		// BUG: encoding/json stores a quoted number in a json.Number, so "5" is taken as 5.
		{"since numeric string", sub(`{"channel":"pool:p1","since":"5"}`), bad, "subscribe", "r1"},
		{"since string", sub(`{"channel":"pool:p1","since":"abc"}`), bad, "subscribe", "r1"},
		{"since empty string", sub(`{"channel":"pool:p1","since":""}`), bad, "subscribe", "r1"},
		{"since bool", sub(`{"channel":"pool:p1","since":true}`), bad, "subscribe", "r1"},
		{"since array", sub(`{"channel":"pool:p1","since":[1]}`), bad, "subscribe", "r1"},
		// Epoch.
		{"epoch without since", sub(`{"channel":"pool:p1","epoch":"abc-1"}`), bad, "subscribe", "r1"},
		{"epoch with since null", sub(`{"channel":"pool:p1","since":null,"epoch":"abc-1"}`), bad, "subscribe", "r1"},
		{"epoch number", sub(`{"channel":"pool:p1","since":1,"epoch":5}`), bad, "subscribe", "r1"},
		{"epoch empty", sub(`{"channel":"pool:p1","since":1,"epoch":""}`), bad, "subscribe", "r1"},
		{"epoch uppercase", sub(`{"channel":"pool:p1","since":1,"epoch":"ABC-1"}`), bad, "subscribe", "r1"},
		{"epoch with a space", sub(`{"channel":"pool:p1","since":1,"epoch":"abc 1"}`), bad, "subscribe", "r1"},
		{"epoch too long", sub(`{"channel":"pool:p1","since":1,"epoch":"` + strings.Repeat("a", wire.MaxEpochLen+1) + `"}`), bad, "subscribe", "r1"},
		{"epoch on unsubscribe", `{"type":"request","event":"unsubscribe","id":"u4","data":{"channel":"pool:p1","epoch":"abc-1"}}`, bad, "unsubscribe", "u4"},
		{"since on unsubscribe", `{"type":"request","event":"unsubscribe","id":"u2","data":{"channel":"pool:p1","since":3}}`, bad, "unsubscribe", "u2"},
		// Auth.
		{"auth without data", `{"type":"request","event":"auth","id":"a1"}`, bad, "auth", "a1"},
		{"auth without token", `{"type":"request","event":"auth","id":"a2","data":{}}`, bad, "auth", "a2"},
		{"auth empty token", `{"type":"request","event":"auth","id":"a3","data":{"token":""}}`, bad, "auth", "a3"},
		{"auth null token", `{"type":"request","event":"auth","id":"a4","data":{"token":null}}`, bad, "auth", "a4"},
		{"auth number token", `{"type":"request","event":"auth","id":"a5","data":{"token":42}}`, bad, "auth", "a5"},
		// Rooms.
		{"bad channel dot", sub(`{"channel":"pool.p1:x"}`), inv, "subscribe", "r1"},
		{"bad channel star", sub(`{"channel":"pool:*"}`), inv, "subscribe", "r1"},
		{"bad channel gt", sub(`{"channel":"pool:>"}`), inv, "subscribe", "r1"},
		{"bad channel empty", sub(`{"channel":""}`), inv, "subscribe", "r1"},
		{"bad channel no colon", sub(`{"channel":"pool"}`), inv, "subscribe", "r1"},
		{"bad channel space", sub(`{"channel":"pool:p 1"}`), inv, "subscribe", "r1"},
		{"bad channel uppercase kind", sub(`{"channel":"Pool:p1"}`), inv, "subscribe", "r1"},
		{"bad channel long id", sub(`{"channel":"pool:` + strings.Repeat("a", 129) + `"}`), inv, "subscribe", "r1"},
		{"bad channel with since", sub(`{"channel":"pool:*","since":1}`), inv, "subscribe", "r1"},
		{"unsubscribe bad channel", `{"type":"request","event":"unsubscribe","id":"u3","data":{"channel":"a:b:c"}}`, inv, "unsubscribe", "u3"},
		// Id.
		{"id too long", `{"type":"ping","id":"` + strings.Repeat("i", wire.MaxRequestIDLen+1) + `"}`, bad, "", ""},
		{"id too long on request", `{"type":"request","event":"subscribe","id":"` + strings.Repeat("i", 200) + `","data":{"channel":"pool:p1"}}`, bad, "subscribe", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.DecodeRequest([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeRequest succeeded with %+v, want %s", got, tt.code)
			}
			if err.Code != tt.code {
				t.Errorf("code %s (%s), want %s", err.Code, err.Message, tt.code)
			}
			if err.Message == "" {
				t.Error("empty error message")
			}
			if got.Event != tt.event || got.ID != tt.id {
				t.Errorf("echo event %q id %q, want %q %q", got.Event, got.ID, tt.event, tt.id)
			}
			if len(got.ID) > wire.MaxRequestIDLen {
				t.Errorf("echoed id is %d bytes", len(got.ID))
			}
		})
	}
}

// Fields the server does not read (seq, ts, room from a client) are ignored,
// whatever their content.
func TestDecodeRequestIgnoresServerFields(t *testing.T) {
	digits := strings.Repeat("9", 10000)
	for _, in := range []string{
		`{"type":"ping","id":"x","seq":-` + digits + `}`,
		`{"type":"ping","id":"x","seq":"not a number","ts":[],"room":{}}`,
	} {
		got, err := wire.DecodeRequest([]byte(in))
		if err != nil || got.Type != wire.TypePing || got.ID != "x" {
			t.Errorf("%.60q: got %+v, %v; want the ping", in, got, err)
		}
	}
}

// Error messages go back to the client: they must not echo long client input.
func TestDecodeRequestErrorsClipInput(t *testing.T) {
	long := strings.Repeat("Z", 10000)
	digits := strings.Repeat("9", 10000)
	sub := func(data string) string {
		return `{"type":"request","event":"subscribe","id":"r","data":` + data + `}`
	}
	tests := []struct{ name, in string }{
		{"unknown type", `{"type":"` + long + `"}`},
		{"unknown event", `{"type":"request","event":"` + long + `"}`},
		{"bad channel", sub(`{"channel":"pool:` + long + `!"}`)},
		{"bad channel kind", sub(`{"channel":"` + long + `:x"}`)},
		{"since huge", sub(`{"channel":"pool:p1","since":` + digits + `}`)},
		{"since negative huge", sub(`{"channel":"pool:p1","since":-` + digits + `}`)},
		{"since long string", sub(`{"channel":"pool:p1","since":"` + long + `"}`)},
		{"id too long", `{"type":"ping","id":"` + long + `"}`},
		{"syntax error after long string", `{"type":"` + long + `",}`},
		{"id huge number", `{"type":"ping","id":-` + digits + `}`},
		{"type huge number", `{"type":` + digits + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.DecodeRequest([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeRequest succeeded: %+v", got)
			}
			if len(err.Message) > 200 {
				t.Errorf("error message is %d bytes: %.120q...", len(err.Message), err.Message)
			}
			if strings.Contains(err.Message, long[:100]) || strings.Contains(err.Message, digits[:100]) {
				t.Errorf("error message echoes the input: %.120q...", err.Message)
			}
			if len(got.Event) > 100 || len(got.ID) > wire.MaxRequestIDLen {
				t.Errorf("echoed event %d bytes, id %d bytes", len(got.Event), len(got.ID))
			}
			// The whole error frame stays small.
			if f := wire.ErrorFrame(got.Event, got.ID, err); f.Len() > 512 {
				t.Errorf("error frame is %d bytes", f.Len())
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	e := wire.Errorf(wire.CodeForbidden, "not authorized to subscribe to %s", "pool:p1")
	if e.Code != "FORBIDDEN" || e.Message != "not authorized to subscribe to pool:p1" {
		t.Errorf("Errorf = %+v", e)
	}
	if got := e.Error(); got != "FORBIDDEN: not authorized to subscribe to pool:p1" {
		t.Errorf("Error() = %q", got)
	}
}

func TestCodesMatchProtocol(t *testing.T) {
	// docs/protocol.md section 3 spells the codes; clients match on them.
	want := map[string]string{
		wire.CodeBadRequest:           "BAD_REQUEST",
		wire.CodeInvalidRoom:          "INVALID_ROOM",
		wire.CodeUnauthenticated:      "UNAUTHENTICATED",
		wire.CodeForbidden:            "FORBIDDEN",
		wire.CodeTooManySubscriptions: "TOO_MANY_SUBSCRIPTIONS",
		wire.CodeRateLimited:          "RATE_LIMITED",
		wire.CodeUnavailable:          "UNAVAILABLE",
		wire.CodeCancelled:            "CANCELLED",
		wire.CodeInternal:             "INTERNAL",
	}
	if len(want) != 9 {
		t.Fatalf("codes are not distinct: %v", want)
	}
	// Codes is the list metrics start at 0: every code, once.
	listed := map[string]bool{}
	for _, c := range wire.Codes() {
		if _, ok := want[c]; !ok || listed[c] {
			t.Errorf("Codes() has %q: not a code, or twice", c)
		}
		listed[c] = true
	}
	if len(listed) != len(want) {
		t.Errorf("Codes() = %v, want all %d codes", wire.Codes(), len(want))
	}
	for got, w := range want {
		if got != w {
			t.Errorf("code %q, want %q", got, w)
		}
	}
	closes := map[int]int{
		int(wire.CloseGoingAway): 1001, int(wire.ClosePolicy): 1008, int(wire.CloseTooBig): 1009,
		int(wire.CloseTokenExpired): 4001, int(wire.CloseSlowConsumer): 4008, int(wire.CloseRateLimited): 4029,
	}
	for got, w := range closes {
		if got != w {
			t.Errorf("close code %d, want %d", got, w)
		}
	}
}
