package roomcast

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// inbound is a server message as the client reads it: the envelope's
// fields, the rest ignored (a newer node's additions).
type inbound struct {
	Type       string          `json:"type"`
	Event      string          `json:"event"`
	ID         string          `json:"id"`
	Room       string          `json:"room"`
	Seq        uint64          `json:"seq"`
	TS         string          `json:"ts"`
	Key        string          `json:"key"`
	KeyDeleted bool            `json:"key_deleted"`
	Conflated  int             `json:"conflated"`
	Data       json.RawMessage `json:"data"`
}

// subscribeData is the data of a subscribe response.
type subscribeData struct {
	Channel   string    `json:"channel"`
	Seq       uint64    `json:"seq"`
	Replayed  int       `json:"replayed"`
	Recovered bool      `json:"recovered"`
	Epoch     string    `json:"epoch"`
	State     []inbound `json:"state"`
}

// errorData is the data of an error message.
type errorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Server message types the client reads.
const (
	typeEvent    = "event"
	typeResponse = "response"
	typeError    = "error"
	typePong     = "pong"
	typePing     = "ping"
)

// decodeFrame reads one data message; a message the client cannot read is
// an error that says what it was (bad input, to be reported and skipped).
func decodeFrame(p []byte, binary bool) (inbound, error) {
	var m inbound
	if binary {
		return m, fmt.Errorf("a binary message of %d bytes", len(p))
	}
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return m, fmt.Errorf("not a JSON object: %s", quote(p))
	}
	if err := json.Unmarshal(p, &m); err != nil {
		return m, fmt.Errorf("not a message (%v): %s", err, quote(p))
	}
	switch m.Type {
	case typeEvent:
		if m.Room == "" && m.Event != eventDraining {
			return m, fmt.Errorf("an event without a room: %s", quote(p))
		}
		if m.Room != "" && m.Seq == 0 {
			return m, fmt.Errorf("an event without a valid seq: %s", quote(p))
		}
	case typeResponse, typeError, typePong, typePing:
	default:
		return m, fmt.Errorf("a message of unknown type %q", clip(m.Type))
	}
	return m, nil
}

// eventDraining is the node's notice that it closes with 1001 next.
const eventDraining = "server.draining"

// quote is a bounded, printable quote of what the node sent.
func quote(p []byte) string {
	const max = 64
	if !utf8.Valid(p) {
		return fmt.Sprintf("%d bytes, not text", len(p))
	}
	if len(p) > max {
		return fmt.Sprintf("%q...", strings.ToValidUTF8(string(p[:max]), ""))
	}
	return fmt.Sprintf("%q", p)
}

// clip bounds a string quoted in a notice.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// event is m as the application receives it.
func (m *inbound) event() *Event {
	return &Event{Room: m.Room, Seq: m.Seq, Name: m.Event, TS: m.TS, Key: m.Key,
		KeyDeleted: m.KeyDeleted, Conflated: m.Conflated, Data: m.Data}
}
