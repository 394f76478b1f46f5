package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Limits of a room name, from docs/protocol.md section 1.
const (
	MaxKindLen = 32
	MaxIDLen   = 128
)

// ErrInvalidRoom is wrapped by every room validation error.
var ErrInvalidRoom = errors.New("invalid room")

// Room is a validated room name, `<kind>:<id>`. The zero Room is invalid; the
// only way to get a non-zero one is ParseRoom, so a Room can be passed to NATS
// as it is.
type Room struct {
	name string
	sep  int // index of ':' in name
}

// ParseRoom validates s against docs/protocol.md section 1.
func ParseRoom(s string) (Room, error) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return Room{}, fmt.Errorf("%w %q: want <kind>:<id>", ErrInvalidRoom, s)
	}
	kind, id := s[:i], s[i+1:]
	if err := checkKind(kind); err != nil {
		return Room{}, fmt.Errorf("%w %q: %s", ErrInvalidRoom, s, err)
	}
	if err := checkID(id); err != nil {
		return Room{}, fmt.Errorf("%w %q: %s", ErrInvalidRoom, s, err)
	}
	return Room{name: s, sep: i}, nil
}

// MustRoom is ParseRoom for constants in tests and examples; it panics on an
// invalid name.
func MustRoom(s string) Room {
	r, err := ParseRoom(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the room name as clients write it.
func (r Room) String() string { return r.name }

// Kind returns the part before the colon (`pool` in `pool:p1`), "" for the
// zero Room.
func (r Room) Kind() string { return r.name[:r.sep] }

// ID returns the part after the colon (`p1` in `pool:p1`), "" for the zero
// Room.
func (r Room) ID() string {
	if r.name == "" {
		return ""
	}
	return r.name[r.sep+1:]
}

// IsZero reports whether r is the zero Room.
func (r Room) IsZero() bool { return r.name == "" }

// Token returns the room as NATS subject tokens, `<kind>.<id>`. It is safe as
// a subject fragment because validation admits neither dots nor wildcards.
// The zero Room has no token: "".
func (r Room) Token() string {
	if r.name == "" {
		return ""
	}
	return r.Kind() + "." + r.ID()
}

// RoomFromToken is the inverse of Token: it parses `<kind>.<id>`.
func RoomFromToken(tok string) (Room, error) {
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return Room{}, fmt.Errorf("%w: subject tokens %q: want <kind>.<id>", ErrInvalidRoom, tok)
	}
	return ParseRoom(tok[:i] + ":" + tok[i+1:])
}

func checkKind(k string) error {
	switch {
	case k == "":
		return errors.New("empty kind")
	case len(k) > MaxKindLen:
		return fmt.Errorf("kind longer than %d", MaxKindLen)
	case k[0] < 'a' || k[0] > 'z':
		return errors.New("kind must start with a-z")
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("kind has %q; allowed: a-z 0-9 _ -", c)
		}
	}
	return nil
}

func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("empty id")
	case len(id) > MaxIDLen:
		return fmt.Errorf("id longer than %d", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("id has %q; allowed: A-Z a-z 0-9 _ -", c)
		}
	}
	return nil
}

// CheckKind validates a room kind alone, for a permission that names a
// kind without an id (`pool:read`).
func CheckKind(k string) error {
	if err := checkKind(k); err != nil {
		return fmt.Errorf("%w: kind %q: %s", ErrInvalidRoom, k, err)
	}
	return nil
}
