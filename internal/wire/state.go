package wire

import "encoding/json"

// RoomState is a room's keyed state as of a position: the latest event of
// every key that exists then, in seq order. Every keyed event of the room
// up to Seq is reflected in it, and none after.
type RoomState struct {
	Seq    uint64 // the position the state is as of
	Epoch  string // the stream Seq is a position in (StreamID.Epoch); "" with Seq 0
	Events []*Event
	// JSON is Events as a JSON array of event messages, encoded once for
	// every subscribe that shares the read.
	JSON []byte
}

// AppendStateArray appends the events as a JSON array of event messages.
func AppendStateArray(buf []byte, events []*Event) []byte {
	buf = append(buf, '[')
	for i, e := range events {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendEvent(buf, e)
	}
	return append(buf, ']')
}

// StateResponseFrame answers subscribe request id with res and the room's
// state, the JSON array state (AppendStateArray's), which is copied in as
// it is: a large state is not encoded again per subscriber.
func StateResponseFrame(id string, res SubscribeResult, state []byte) *Frame {
	data, err := json.Marshal(res)
	if err != nil {
		panic("wire: encoding server data: " + err.Error()) // our own type; cannot fail
	}
	head, err := json.Marshal(Message{Type: TypeResponse, Event: EventSubscribe, ID: id})
	if err != nil {
		panic("wire: encoding server message: " + err.Error())
	}
	buf := make([]byte, maxHeaderLen, maxHeaderLen+len(head)+len(data)+len(state)+32)
	buf = append(buf, head[:len(head)-1]...) // without its closing brace
	buf = append(buf, `,"data":`...)
	buf = append(buf, data[:len(data)-1]...)
	buf = append(buf, `,"state":`...)
	buf = append(buf, state...)
	buf = append(buf, "}}"...)
	return frameIn(buf)
}
