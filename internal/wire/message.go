package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Message is the envelope of every message on the WebSocket, both ways.
// Clients send requests, pings and pongs; servers send the rest.
type Message struct {
	Type  string          `json:"type"`
	Event string          `json:"event,omitempty"`
	ID    string          `json:"id,omitempty"`
	Room  string          `json:"room,omitempty"`
	Seq   uint64          `json:"seq,omitempty"`
	TS    string          `json:"ts,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// MaxRequestIDLen bounds a request id, so an error echoing it stays small.
const MaxRequestIDLen = 128

// Request is a decoded, validated client message.
type Request struct {
	Type  string // TypeRequest, TypePing or TypePong
	Event string // for TypeRequest: EventSubscribe, EventUnsubscribe or EventAuth
	ID    string

	Room     Room   // subscribe, unsubscribe
	Since    uint64 // subscribe
	HasSince bool   // subscribe: since was given (0 is a valid since)
	Token    string // auth
}

type requestData struct {
	Channel *string      `json:"channel"`
	Since   *json.Number `json:"since"`
	Token   *string      `json:"token"`
}

// DecodeRequest parses one client text frame. On failure it returns the
// request as far as it was understood (Event and ID, so the error can be
// correlated) and the protocol error to send back.
func DecodeRequest(p []byte) (Request, *Error) {
	var m Message
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return Request{}, Errorf(CodeBadRequest, "not a JSON message object: %s", jsonErr(err))
	}
	if dec.More() {
		return Request{}, Errorf(CodeBadRequest, "one JSON object per frame")
	}
	r := Request{Type: m.Type, Event: clip(m.Event), ID: m.ID}
	if len(m.ID) > MaxRequestIDLen {
		r.ID = ""
		return r, Errorf(CodeBadRequest, "id longer than %d bytes", MaxRequestIDLen)
	}
	switch m.Type {
	case TypePing, TypePong:
		return r, nil
	case TypeRequest:
	case "":
		return r, Errorf(CodeBadRequest, "missing type")
	default:
		return r, Errorf(CodeBadRequest, "unknown type %q", clip(m.Type))
	}
	var d requestData
	if len(m.Data) > 0 && !bytes.Equal(m.Data, []byte("null")) {
		dd := json.NewDecoder(bytes.NewReader(m.Data))
		dd.UseNumber()
		if err := dd.Decode(&d); err != nil {
			return r, Errorf(CodeBadRequest, "data: %s", jsonErr(err))
		}
	}
	switch m.Event {
	case EventSubscribe, EventUnsubscribe:
		return decodeRoomRequest(r, d)
	case EventAuth:
		if d.Token == nil || *d.Token == "" {
			return r, Errorf(CodeBadRequest, "auth: missing data.token")
		}
		r.Token = *d.Token
		return r, nil
	case "":
		return r, Errorf(CodeBadRequest, "request without event")
	default:
		return r, Errorf(CodeBadRequest, "unknown event %q", clip(m.Event))
	}
}

func decodeRoomRequest(r Request, d requestData) (Request, *Error) {
	if d.Channel == nil {
		return r, Errorf(CodeBadRequest, "%s: missing data.channel", r.Event)
	}
	room, err := ParseRoom(*d.Channel)
	if err != nil {
		return r, &Error{Code: CodeInvalidRoom, Message: clip(err.Error())}
	}
	r.Room = room
	if d.Since != nil {
		if r.Event != EventSubscribe {
			return r, Errorf(CodeBadRequest, "since is only for subscribe")
		}
		s, err := strconv.ParseUint(d.Since.String(), 10, 64)
		if err != nil {
			return r, Errorf(CodeBadRequest, "since must be a non-negative integer, got %s", clip(d.Since.String()))
		}
		r.Since, r.HasSince = s, true
	}
	return r, nil
}

// jsonErr turns a decoding error into a message that does not echo the input.
func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("want %s, got %s", te.Type, te.Value)
	default:
		return "unexpected end of input"
	}
}

// clip bounds client-supplied text echoed back in an error.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
