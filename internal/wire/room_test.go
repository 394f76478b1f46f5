package wire_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/wire"
)

// roomRE is docs/protocol.md section 1, written as a regular expression. Tests and
// FuzzParseRoom use it as the reference ParseRoom must agree with.
var roomRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_-]{1,128}$`)

func TestParseRoomValid(t *testing.T) {
	kind32 := "k" + strings.Repeat("a", 31)
	id128 := strings.Repeat("I", 128)
	tests := []struct {
		name, in, kind, id string
	}{
		{"pool", "pool:p1", "pool", "p1"},
		{"pool local", "pool:pool_local", "pool", "pool_local"},
		{"workflow", "workflow:demo_workflow_123", "workflow", "demo_workflow_123"},
		{"adapter uuid", "adapter:550e8400-e29b-41d4-a716-446655440000", "adapter", "550e8400-e29b-41d4-a716-446655440000"},
		{"shortest", "a:b", "a", "b"},
		{"kind 32 chars", kind32 + ":x", kind32, "x"},
		{"id 128 chars", "pool:" + id128, "pool", id128},
		{"both at limits", kind32 + ":" + id128, kind32, id128},
		{"kind digits and punctuation", "k9_-:x", "k9_-", "x"},
		{"kind ending in dash", "pool-:x", "pool-", "x"},
		{"id mixed case", "pool:AbCxYz", "pool", "AbCxYz"},
		{"id only digits", "pool:0123456789", "pool", "0123456789"},
		{"id only dash", "pool:-", "pool", "-"},
		{"id only underscore", "pool:_", "pool", "_"},
		{"id leading dash", "pool:-p1", "pool", "-p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !roomRE.MatchString(tt.in) {
				t.Fatalf("test table: %q does not match the protocol regexp", tt.in)
			}
			r, err := wire.ParseRoom(tt.in)
			if err != nil {
				t.Fatalf("ParseRoom(%q): %v", tt.in, err)
			}
			if r.IsZero() {
				t.Errorf("ParseRoom(%q) is zero", tt.in)
			}
			if r.String() != tt.in || r.Kind() != tt.kind || r.ID() != tt.id {
				t.Errorf("ParseRoom(%q) = (%q, kind %q, id %q), want (%q, %q, %q)",
					tt.in, r.String(), r.Kind(), r.ID(), tt.in, tt.kind, tt.id)
			}
			if tok := r.Token(); tok != tt.kind+"."+tt.id {
				t.Errorf("Token() = %q, want %q", tok, tt.kind+"."+tt.id)
			}
			back, err := wire.RoomFromToken(r.Token())
			if err != nil || back != r {
				t.Errorf("RoomFromToken(%q) = %v, %v; want %v", r.Token(), back, err, r)
			}
			again, err := wire.ParseRoom(r.String())
			if err != nil || again != r {
				t.Errorf("ParseRoom(String()) = %v, %v; want %v", again, err, r)
			}
			if m := wire.MustRoom(tt.in); m != r {
				t.Errorf("MustRoom(%q) = %v, want %v", tt.in, m, r)
			}
		})
	}
}

func TestParseRoomInvalid(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"colon only", ":"},
		{"no colon", "pool"},
		{"no colon with dot", "pool.p1"},
		{"empty id", "pool:"},
		{"empty kind", ":p1"},
		{"kind 33 chars", "k" + strings.Repeat("a", 32) + ":x"},
		{"id 129 chars", "pool:" + strings.Repeat("I", 129)},
		{"dot in kind", "po.ol:p1"},
		{"dot in id", "pool:p.1"},
		{"dot id", "pool:."},
		{"space in id", "pool:p 1"},
		{"leading space", " pool:p1"},
		{"trailing space", "pool:p1 "},
		{"space around colon", "pool : p1"},
		{"tab", "pool:p1\t"},
		{"newline", "pool:p1\n"},
		{"CR LF", "pool:p1\r\n"},
		{"NUL in id", "pool:p\x00"},
		{"NUL in kind", "po\x00l:p1"},
		{"star id", "pool:*"},
		{"star kind", "*:p1"},
		{"star in id", "pool:p*"},
		{"gt id", "pool:>"},
		{"gt kind", ">:p1"},
		{"uppercase kind", "Pool:p1"},
		{"all uppercase kind", "POOL:p1"},
		{"uppercase inside kind", "poOl:p1"},
		{"leading digit kind", "1pool:p1"},
		{"leading underscore kind", "_pool:p1"},
		{"leading dash kind", "-pool:p1"},
		{"multiple colons", "pool:a:b"},
		{"double colon", "pool::p1"},
		{"trailing colon", "pool:p1:"},
		{"slash", "pool:p/1"},
		{"plus", "pool:p+1"},
		{"percent", "pool:p%31"},
		{"dollar", "pool:$SYS"},
		{"unicode kind", "pööl:p1"},
		{"unicode id", "pool:pé"},
		{"cjk id", "pool:日本"},
		{"cyrillic a in kind", "pооl:p1"},
		{"fullwidth kind", "ｐool:p1"},
		{"kelvin sign id", "pool:\u212a"},
		{"zero width space", "pool:p1\u200b"},
		{"invalid utf8", "pool:p1\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if roomRE.MatchString(tt.in) {
				t.Fatalf("test table: %q matches the protocol regexp", tt.in)
			}
			r, err := wire.ParseRoom(tt.in)
			if err == nil {
				t.Fatalf("ParseRoom(%q) = %q, want an error", tt.in, r.String())
			}
			if !errors.Is(err, wire.ErrInvalidRoom) {
				t.Errorf("ParseRoom(%q) error %v does not wrap ErrInvalidRoom", tt.in, err)
			}
			if !r.IsZero() {
				t.Errorf("ParseRoom(%q) returned non-zero room %q with an error", tt.in, r.String())
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("MustRoom(%q) did not panic", tt.in)
					}
				}()
				wire.MustRoom(tt.in)
			}()
		})
	}
}

func TestRoomFromToken(t *testing.T) {
	tests := []struct {
		tok  string
		want string // room name, "" for an error
	}{
		{"pool.p1", "pool:p1"},
		{"workflow.demo_workflow_123", "workflow:demo_workflow_123"},
		{"adapter.550e8400-e29b-41d4-a716-446655440000", "adapter:550e8400-e29b-41d4-a716-446655440000"},
		{"pool", ""},
		{"", ""},
		{".", ""},
		{"pool.", ""},
		{".p1", ""},
		{"pool.p1.x", ""},
		{"pool..p1", ""},
		{"pool.*", ""},
		{"pool.>", ""},
		{">", ""},
		{"pool:p1", ""},
		{"pool:p1.x", ""},
		{"Pool.p1", ""},
		{"pool.p 1", ""},
	}
	for _, tt := range tests {
		r, err := wire.RoomFromToken(tt.tok)
		if tt.want == "" {
			if err == nil {
				t.Errorf("RoomFromToken(%q) = %q, want an error", tt.tok, r.String())
			} else if !errors.Is(err, wire.ErrInvalidRoom) {
				t.Errorf("RoomFromToken(%q) error %v does not wrap ErrInvalidRoom", tt.tok, err)
			}
			continue
		}
		if err != nil || r.String() != tt.want {
			t.Errorf("RoomFromToken(%q) = %q, %v; want %q", tt.tok, r.String(), err, tt.want)
			continue
		}
		if r.Token() != tt.tok {
			t.Errorf("RoomFromToken(%q).Token() = %q", tt.tok, r.Token())
		}
	}
}

func TestRoomZero(t *testing.T) {
	var r wire.Room
	if !r.IsZero() || r.String() != "" {
		t.Errorf("zero Room: IsZero %v, String %q", r.IsZero(), r.String())
	}
	if wire.MustRoom("pool:p1").IsZero() {
		t.Error("parsed room reports IsZero")
	}
	if a, b := wire.MustRoom("pool:p1"), wire.MustRoom("pool:"+"p1"); a != b {
		t.Error("equal names give unequal rooms")
	}
	if wire.MustRoom("pool:p1") == wire.MustRoom("pool:p2") {
		t.Error("different names give equal rooms")
	}
}

func TestParseRoomErrorMentionsReason(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"pool", "<kind>:<id>"},
		{":p1", "empty kind"},
		{"pool:", "empty id"},
		{"k" + strings.Repeat("a", 32) + ":x", "longer than 32"},
		{"pool:" + strings.Repeat("I", 129), "longer than 128"},
		{"Pool:p1", "a-z"},
		{"pool:p.1", "'.'"},
	}
	for _, tt := range tests {
		_, err := wire.ParseRoom(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("ParseRoom(%q) error %v, want it to mention %q", tt.in, err, tt.reason)
		}
	}
}
