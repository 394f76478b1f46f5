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
func CheckEventName(s string) error {
	if s == "" {
		return errors.New("missing event name")
	}
	if len(s) > MaxEventNameLen {
		return fmt.Errorf("event name longer than %d", MaxEventNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return fmt.Errorf("event name has %q; allowed: A-Z a-z 0-9 _ . : -", c)
		}
	}
	return nil
}

// TimeFormat is the layout of `ts`: RFC 3339 in UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// EventFrame encodes e as an event message and prepares its frame, in one
// allocation. Room and Name are validated, so they need no JSON escaping.
func EventFrame(e *Event) *Frame {
	// The fixed part with a 20-digit seq and a ts is under 128 bytes.
	size := maxHeaderLen + 128 + len(e.Name) + len(e.Room.name) + len(e.Data)
	buf := make([]byte, maxHeaderLen, size)
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
	if len(e.Data) > 0 {
		buf = append(buf, `,"data":`...)
		buf = append(buf, e.Data...)
	}
	buf = append(buf, '}')
	f := frameIn(buf)
	f.Seq, f.Stored = e.Seq, e.Time
	return f
}

// DrainingFrame is the `server.draining` event sent before a 1001 close.
func DrainingFrame() *Frame {
	return NewTextFrame([]byte(`{"type":"event","event":"` + EventDraining + `"}`))
}
