package wire

// RoomState is a room's keyed state as of a position: the latest event of
// every key that exists then, in seq order. Every keyed event of the room
// up to Seq is reflected in it, and none after.
type RoomState struct {
	Seq    uint64 // the position the state is as of
	Epoch  string // the stream Seq is a position in (StreamID.Epoch)
	Events []*Event
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
