package wire

import "encoding/json"

// SubscribeResult is the data of a subscribe response.
type SubscribeResult struct {
	Status    string `json:"status"`
	Channel   string `json:"channel"`
	Seq       uint64 `json:"seq"`
	Replayed  int    `json:"replayed"`
	Recovered bool   `json:"recovered"`
	Epoch     string `json:"epoch"` // the stream seq is a position in
}

// StateResult is the data of a response to a subscribe with state, as a
// client reads it (the server writes it with StateResponseFrame): State
// is absent when a resume was answered without it.
type StateResult struct {
	SubscribeResult
	State []Message `json:"state"`
}

// UnsubscribeResult is the data of an unsubscribe response.
type UnsubscribeResult struct {
	Status  string `json:"status"`
	Channel string `json:"channel"`
}

// AuthResult is the data of an auth response.
type AuthResult struct {
	Status    string `json:"status"`
	UserID    string `json:"user_id"`
	ExpiresAt string `json:"expires_at"`
}

// RoomsResult is the data of a rooms response.
type RoomsResult struct {
	Rooms     []RoomInfo `json:"rooms"`     // newest first
	Truncated bool       `json:"truncated"` // more rooms than listed had recent events
}

// RoomInfo is one room of a rooms response: its latest stored event.
type RoomInfo struct {
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	TS   string `json:"ts"`
}

// ErrorData is the data of an error message.
type ErrorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ResponseFrame answers request id of event with data.
func ResponseFrame(event, id string, data any) *Frame {
	return messageFrame(Message{Type: TypeResponse, Event: event, ID: id}, data)
}

// ErrorFrame answers request id of event with e.
func ErrorFrame(event, id string, e *Error) *Frame {
	return messageFrame(Message{Type: TypeError, Event: event, ID: id}, ErrorData{Code: e.Code, Message: e.Message})
}

// RoomErrorFrame is an error about room that answers no request: a
// subscription the node ended on its own.
func RoomErrorFrame(event, room string, e *Error) *Frame {
	return messageFrame(Message{Type: TypeError, Event: event, Room: room}, ErrorData{Code: e.Code, Message: e.Message})
}

// PongFrame answers a ping with the same id.
func PongFrame(id string) *Frame {
	return messageFrame(Message{Type: TypePong, ID: id}, nil)
}

func messageFrame(m Message, data any) *Frame {
	if data != nil {
		d, err := json.Marshal(data)
		if err != nil {
			panic("wire: encoding server data: " + err.Error()) // our own types; cannot fail
		}
		m.Data = d
	}
	p, err := json.Marshal(m)
	if err != nil {
		panic("wire: encoding server message: " + err.Error())
	}
	return NewTextFrame(p)
}
