package bus

import (
	"fmt"
	"strings"

	"github.com/roomcast/roomcast/internal/wire"
)

// DefaultPrefix and DefaultStream are docs/protocol.md section 2's names.
const (
	DefaultPrefix = "roomcast"
	DefaultStream = "ROOMCAST"
)

// Subjects maps rooms to the NATS subjects of one prefix.
type Subjects struct {
	Prefix string
}

// Room is the subject workers publish room r's events to.
func (s Subjects) Room(r wire.Room) string { return s.Prefix + ".rooms." + r.Token() }

// Live is the subject the stream republishes room r's events to.
func (s Subjects) Live(r wire.Room) string { return s.Prefix + ".live." + r.Token() }

// AllRooms is the stream's subject filter.
func (s Subjects) AllRooms() string { return s.Prefix + ".rooms.>" }

// AllLive is the stream's republish destination.
func (s Subjects) AllLive() string { return s.Prefix + ".live.>" }

// RoomOf parses the room of a rooms or live subject.
func (s Subjects) RoomOf(subject string) (wire.Room, error) {
	for _, mid := range []string{".rooms.", ".live."} {
		if rest, ok := strings.CutPrefix(subject, s.Prefix+mid); ok {
			return wire.RoomFromToken(rest)
		}
	}
	return wire.Room{}, fmt.Errorf("subject %q is not under %q", subject, s.Prefix)
}

// CheckPrefix validates a subject prefix: one or more plain NATS tokens.
func CheckPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("empty subject prefix")
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("subject prefix %q: tokens must be non-empty, without wildcards or spaces", p)
		}
	}
	return nil
}

// The state stream's subjects (statestream.go): under each room, one per
// key, holding the key's latest event, and the room's position record;
// and the keeper's position.

// StateKey is the subject of room r's key. A key's dots would split the
// subject's token, so they are written as "~", which no key has.
func (s Subjects) StateKey(r wire.Room, key string) string {
	return s.stateRoom(r) + ".k." + strings.ReplaceAll(key, ".", "~")
}

// StateKeys matches every key of room r.
func (s Subjects) StateKeys(r wire.Room) string { return s.stateRoom(r) + ".k.>" }

// StateRoomPos is the subject of room r's position record: the end of the
// last keeper batch that changed the room's keys.
func (s Subjects) StateRoomPos(r wire.Room) string { return s.stateRoom(r) + ".pos" }

// StateRoom matches room r's keys and its position record.
func (s Subjects) StateRoom(r wire.Room) string { return s.stateRoom(r) + ".>" }

func (s Subjects) stateRoom(r wire.Room) string { return s.Prefix + ".state.rooms." + r.Token() }

// AllStateRooms matches every room's keys and position records.
func (s Subjects) AllStateRooms() string { return s.Prefix + ".state.rooms.>" }

// StatePos is the subject of the keeper's position record.
func (s Subjects) StatePos() string { return s.Prefix + ".state.pos" }

// AllState is the state stream's subject filter.
func (s Subjects) AllState() string { return s.Prefix + ".state.>" }
