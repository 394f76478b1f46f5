package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxEventNameLen bounds an event name.
const MaxEventNameLen = 128

// ErrBadPayload is wrapped by every payload validation error.
var ErrBadPayload = errors.New("bad event payload")

// Event is one stored room event, as the bus hands it to rooms.
type Event struct {
	Room Room
	Seq  uint64    // stream sequence
	Prev uint64    // sequence of the previous event of the same room, when known
	Time time.Time // when the stream stored it
	Name string
	Data json.RawMessage // compacted JSON object, or nil
	// Key is the thing of the room whose state the event is (a worker, a
	// task), "" for an event that is history only; KeyDeleted says the
	// event ends that key (docs/protocol.md, "Keys").
	Key        string
	KeyDeleted bool
	// Err is set when the stored payload is not a valid event: the event
	// still takes its place in the room's sequence but is never delivered.
	Err error
}

// Payload is what a pool worker publishes (docs/protocol.md section 2).
type Payload struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// ParsePayload validates a worker's payload and returns its event name and
// compacted data. data may share p's memory.
func ParsePayload(p []byte) (name string, data json.RawMessage, err error) {
	if !utf8.Valid(p) {
		// A text frame must be UTF-8 (RFC 6455); browsers close on anything else.
		return "", nil, fmt.Errorf("%w: not valid UTF-8", ErrBadPayload)
	}
	if name, data, ok := parsePayloadFast(p); ok {
		return name, data, nil
	}
	return parsePayloadSlow(p)
}

// parsePayloadSlow is ParsePayload for any payload that is valid UTF-8.
func parsePayloadSlow(p []byte) (name string, data json.RawMessage, err error) {
	var pl Payload
	if err := json.Unmarshal(p, &pl); err != nil {
		return "", nil, fmt.Errorf("%w: %s", ErrBadPayload, jsonErr(err))
	}
	if err := CheckEventName(pl.Event); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if len(pl.Data) == 0 || bytes.Equal(pl.Data, []byte("null")) {
		return pl.Event, nil, nil
	}
	if pl.Data[0] != '{' {
		return "", nil, fmt.Errorf("%w: data must be a JSON object", ErrBadPayload)
	}
	var buf bytes.Buffer
	buf.Grow(len(pl.Data))
	if err := json.Compact(&buf, pl.Data); err != nil {
		return "", nil, fmt.Errorf("%w: data: %s", ErrBadPayload, jsonErr(err))
	}
	return pl.Event, buf.Bytes(), nil
}

// CheckEventName admits 1 to MaxEventNameLen characters of A-Z a-z 0-9 _ . : -
// so names can be written into JSON without escaping.
func CheckEventName(s string) error { return checkName("event name", s, MaxEventNameLen) }

// MaxKeyLen bounds a key.
const MaxKeyLen = 128

// CheckKey admits 1 to MaxKeyLen characters of A-Z a-z 0-9 _ . : -, the
// event names' alphabet: a key needs no JSON escaping either.
func CheckKey(s string) error { return checkName("key", s, MaxKeyLen) }

// checkName is the rule event names and keys share.
func checkName(what, s string, maxLen int) error {
	if s == "" {
		return fmt.Errorf("missing %s", what)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%s longer than %d", what, maxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return fmt.Errorf("%s has %q; allowed: A-Z a-z 0-9 _ . : -", what, c)
		}
	}
	return nil
}

// The headers a publisher sets on a keyed event (docs/protocol.md, "Keys"):
// the key, and on an event that ends it, HeaderKeyDeleted "true".
const (
	HeaderKey        = "Roomcast-Key"
	HeaderKeyDeleted = "Roomcast-Key-Deleted"
)

// ErrBadKey is wrapped by the error of an event whose key headers are
// malformed: like a bad payload it takes its place but is never delivered.
var ErrBadKey = errors.New("bad event key")

// ParseKey reads an event's key headers (their values, "" when absent):
// a key must pass CheckKey, and the deleted header, only with a key, must
// say "true".
func ParseKey(key, deleted string) (string, bool, error) {
	switch {
	case key == "" && deleted == "":
		return "", false, nil
	case key == "":
		return "", false, fmt.Errorf("%w: %s without %s", ErrBadKey, HeaderKeyDeleted, HeaderKey)
	case deleted != "" && deleted != "true":
		return "", false, fmt.Errorf("%w: %s must be \"true\"", ErrBadKey, HeaderKeyDeleted)
	}
	if err := CheckKey(key); err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return key, deleted == "true", nil
}

// PublishOptions is what a publisher says of an event beside its payload,
// all of it in NATS headers (the payload stays the worker's).
type PublishOptions struct {
	// MsgID is the Nats-Msg-Id: a retry with the same id within the
	// stream's duplicate window is not stored twice. "": none.
	MsgID string
	// Key is the thing of the room whose state the event is (HeaderKey),
	// "" for an event that is history only; KeyDeleted says the event
	// ends that key (HeaderKeyDeleted), and needs a Key.
	Key        string
	KeyDeleted bool
}

// KeyHeaders returns the values of o's key headers, "" for one not set:
// what ParseKey reads back.
func (o PublishOptions) KeyHeaders() (key, deleted string) {
	if o.KeyDeleted {
		deleted = "true"
	}
	return o.Key, deleted
}

// CheckKey reports whether o's key is one ParseKey accepts, so a publisher
// never stores an event the edges would refuse as a bad key.
func (o PublishOptions) CheckKey() error {
	_, _, err := ParseKey(o.KeyHeaders())
	return err
}

// TimeFormat is the layout of `ts`: RFC 3339 in UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// EventFrame encodes e as an event message and prepares its frame, in one
// allocation. Room and Name are validated, so they need no JSON escaping.
func EventFrame(e *Event) *Frame {
	buf := make([]byte, maxHeaderLen, maxHeaderLen+EventLen(e))
	buf = AppendEvent(buf, e)
	f := frameIn(buf)
	// Room on every event's frame, so conflation can count a dropped
	// event on the next event of its room, keyed or not.
	f.Seq, f.Stored, f.Room, f.Key = e.Seq, e.Time, e.Room.name, e.Key
	return f
}

// EventLen is a bound on the length of e's event message.
func EventLen(e *Event) int {
	// The fixed part with a 20-digit seq, a ts and the key's fields is
	// under 160 bytes.
	return 160 + len(e.Name) + len(e.Room.name) + len(e.Key) + len(e.Data)
}

// AppendEvent appends e's event message (JSON) to buf.
func AppendEvent(buf []byte, e *Event) []byte {
	buf = append(buf, `{"type":"event","event":"`...)
	buf = append(buf, e.Name...)
	buf = append(buf, `","room":"`...)
	buf = append(buf, e.Room.name...)
	buf = append(buf, `","seq":`...)
	buf = strconv.AppendUint(buf, e.Seq, 10)
	if !e.Time.IsZero() {
		buf = append(buf, `,"ts":"`...)
		buf = appendTS(buf, e.Time)
		buf = append(buf, '"')
	}
	if e.Key != "" {
		buf = append(buf, `,"key":"`...)
		buf = append(buf, e.Key...)
		buf = append(buf, '"')
		if e.KeyDeleted {
			buf = append(buf, `,"key_deleted":true`...)
		}
	}
	if len(e.Data) > 0 {
		buf = append(buf, `,"data":`...)
		buf = append(buf, e.Data...)
	}
	return append(buf, '}')
}

// DrainingFrame is the `server.draining` event sent before a 1001 close.
func DrainingFrame() *Frame {
	return NewTextFrame([]byte(`{"type":"event","event":"` + EventDraining + `"}`))
}
