package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Message is the envelope of every message on the WebSocket, both ways.
// Clients send requests, pings and pongs; servers send the rest.
type Message struct {
	Type  string `json:"type"`
	Event string `json:"event,omitempty"`
	ID    string `json:"id,omitempty"`
	Room  string `json:"room,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
	TS    string `json:"ts,omitempty"`
	// An event's key fields (docs/protocol.md, "Keys"), for clients
	// that decode events into a Message.
	Key        string `json:"key,omitempty"`
	KeyDeleted bool   `json:"key_deleted,omitempty"`
	// Conflated is how many superseded events of the room a conflating
	// connection skipped just before this one ("Conflation").
	Conflated int             `json:"conflated,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// MaxRequestIDLen bounds a request id, so an error echoing it stays small.
const MaxRequestIDLen = 128

// Request is a decoded, validated client message.
type Request struct {
	Type  string // TypeRequest, TypePing or TypePong
	Event string // for TypeRequest: EventSubscribe, EventUnsubscribe, EventAuth, EventRooms or EventCluster
	ID    string

	Room     Room   // subscribe, unsubscribe
	Since    uint64 // subscribe
	HasSince bool   // subscribe: since was given (0 is a valid since)
	Epoch    string // subscribe, with since: the stream since is a position in ("": not given)
	State    bool   // subscribe: answer with the room's state (its keys' latest events)
	Conflate bool   // subscribe: a queue past its threshold drops superseded keyed events of the room
	Token    string // auth
}

// envelope is a client message with every field kept raw, so a field of the
// wrong type does not hide the id and event the error must echo.
type envelope struct {
	Type  json.RawMessage `json:"type"`
	Event json.RawMessage `json:"event"`
	ID    json.RawMessage `json:"id"`
	Data  json.RawMessage `json:"data"`
}

type requestData struct {
	Channel  json.RawMessage `json:"channel"`
	Since    json.RawMessage `json:"since"`
	Epoch    json.RawMessage `json:"epoch"`
	State    json.RawMessage `json:"state"`
	Conflate json.RawMessage `json:"conflate"`
	Token    json.RawMessage `json:"token"`
}

// DecodeRequest parses one client text frame. On failure it returns the
// request as far as it was understood (Event and ID, so the error can be
// correlated) and the protocol error to send back.
func DecodeRequest(p []byte) (Request, *Error) {
	var env envelope
	if err := decodeObject(p, &env); err != nil {
		return Request{}, Errorf(CodeBadRequest, "not a JSON message object: %s", err)
	}
	var r Request
	id, idErr := optString(env.ID, "id")
	if idErr == nil && len(id) > MaxRequestIDLen {
		idErr = fmt.Errorf("id longer than %d bytes", MaxRequestIDLen)
	}
	if idErr == nil {
		r.ID = id
	}
	typ, typErr := optString(env.Type, "type")
	event, evErr := optString(env.Event, "event")
	r.Type, r.Event = typ, clip(event)
	for _, err := range []error{idErr, typErr, evErr} {
		if err != nil {
			return r, &Error{Code: CodeBadRequest, Message: err.Error()}
		}
	}
	switch typ {
	case TypePing, TypePong:
		return r, nil
	case TypeRequest:
	case "":
		return r, Errorf(CodeBadRequest, "missing type")
	default:
		return r, Errorf(CodeBadRequest, "unknown type %q", clip(typ))
	}
	var d requestData
	if len(env.Data) > 0 && string(env.Data) != "null" {
		if err := decodeObject(env.Data, &d); err != nil {
			return r, Errorf(CodeBadRequest, "data: %s", err)
		}
	}
	switch event {
	case EventSubscribe, EventUnsubscribe:
		return decodeRoomRequest(r, d)
	case EventAuth:
		tok, err := optString(d.Token, "data.token")
		if err != nil {
			return r, &Error{Code: CodeBadRequest, Message: err.Error()}
		}
		if tok == "" {
			return r, Errorf(CodeBadRequest, "auth: missing data.token")
		}
		r.Token = tok
		return r, nil
	case EventRooms, EventCluster:
		if given(d.Channel) || given(d.Since) || given(d.Epoch) || given(d.Token) || given(d.State) || given(d.Conflate) {
			return r, Errorf(CodeBadRequest, "%s takes no channel, since, epoch, state, conflate or token", event)
		}
		return r, nil
	case "":
		return r, Errorf(CodeBadRequest, "request without event")
	default:
		return r, Errorf(CodeBadRequest, "unknown event %q", clip(event))
	}
}

func decodeRoomRequest(r Request, d requestData) (Request, *Error) {
	channel, err := optString(d.Channel, "data.channel")
	if err != nil {
		return r, &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	if channel == "" && (len(d.Channel) == 0 || string(d.Channel) == "null") {
		return r, Errorf(CodeBadRequest, "%s: missing data.channel", r.Event)
	}
	room, rerr := ParseRoom(channel)
	if rerr != nil {
		return r, &Error{Code: CodeInvalidRoom, Message: roomErr(rerr)}
	}
	r.Room = room
	if err := decodeSubscribeFlags(&r, d); err != nil {
		return r, err
	}
	hasSince, hasEpoch := given(d.Since), given(d.Epoch)
	switch {
	case !hasSince && !hasEpoch:
		return r, nil
	case r.Event != EventSubscribe && hasSince:
		return r, Errorf(CodeBadRequest, "since is only for subscribe")
	case r.Event != EventSubscribe:
		return r, Errorf(CodeBadRequest, "epoch is only for subscribe")
	case !hasSince:
		return r, Errorf(CodeBadRequest, "epoch without since: it names the stream a since is a position in")
	}
	// The raw token must be a plain non-negative integer: no quotes,
	// fraction or exponent.
	s, perr := strconv.ParseUint(string(d.Since), 10, 64)
	if perr != nil {
		return r, Errorf(CodeBadRequest, "since must be a non-negative integer, got %s", clip(string(d.Since)))
	}
	r.Since, r.HasSince = s, true
	if hasEpoch {
		epoch, err := optString(d.Epoch, "data.epoch")
		if err == nil {
			err = CheckEpoch(epoch)
		}
		if err != nil {
			return r, Errorf(CodeBadRequest, "%s; send back the epoch of a subscribe response", err)
		}
		r.Epoch = epoch
	}
	return r, nil
}

// decodeSubscribeFlags reads subscribe's booleans, state and conflate:
// true or false (null means omitted), and only for subscribe.
func decodeSubscribeFlags(r *Request, d requestData) *Error {
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		to   *bool
	}{{"state", d.State, &r.State}, {"conflate", d.Conflate, &r.Conflate}} {
		if !given(f.raw) {
			continue
		}
		if r.Event != EventSubscribe {
			return Errorf(CodeBadRequest, "%s is only for subscribe", f.name)
		}
		switch string(f.raw) {
		case "true":
			*f.to = true
		case "false":
		default:
			return Errorf(CodeBadRequest, "%s must be true or false, got %s", f.name, clip(string(f.raw)))
		}
	}
	return nil
}

// given reports whether an optional field is present and not null.
func given(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// decodeObject decodes p, which must be exactly one JSON object, into v.
func decodeObject(p []byte, v any) error {
	if !json.Valid(p) {
		var raw json.RawMessage
		if err := json.Unmarshal(p, &raw); err != nil {
			return errors.New(jsonErr(err))
		}
		return errors.New("invalid JSON")
	}
	if trimmed := bytes.TrimLeft(p, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("want a JSON object")
	}
	if err := json.Unmarshal(p, v); err != nil {
		return errors.New(jsonErr(err))
	}
	return nil
}

// optString decodes an optional JSON string field; absent and null are "".
func optString(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s must be a string", field)
	}
	return s, nil
}

// roomErr keeps the reason of a room error and clips the room it quotes.
func roomErr(err error) string {
	msg := err.Error()
	if len(msg) <= 200 {
		return msg
	}
	return clip(msg) + " (" + msg[strings.LastIndex(msg, ": ")+2:] + ")"
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
			return fmt.Sprintf("field %s: want %s, got %s", clip(te.Field), te.Type, clip(te.Value))
		}
		return fmt.Sprintf("want %s, got %s", te.Type, clip(te.Value))
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
