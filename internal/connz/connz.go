// Package connz is the vocabulary of what a node tells its operators about
// its connections and rooms (docs/protocol.md section 7): the entries of
// the admin listener's /connz and /roomz, the query that filters, sorts and
// pages /connz, and the slowest connections a node's cluster summary
// carries. Producers (the edge, the rooms) fill these types; readers
// (`roomcast top`, the dashboard, tests) decode them. It never holds a
// token.
package connz

import (
	"time"
)

// Conn is one client connection as /connz shows it.
type Conn struct {
	ID     uint64    `json:"id"`             // the connection's id in the node's log lines
	Remote string    `json:"remote"`         // the peer's address, ip:port
	User   string    `json:"user,omitempty"` // the token's subject; "" when anonymous or not authenticated yet
	Opened time.Time `json:"opened"`
	// Rooms are the rooms the connection is a member of, with what is
	// queued for each.
	Rooms []Room `json:"rooms"`
	// Lag is the events queued for the connection and not yet written to
	// its socket, all rooms together; QueuedBytes their bytes, with
	// whatever else is queued (responses).
	Lag         int `json:"lag"`
	QueuedBytes int `json:"queued_bytes"`
	// OldestWait is how long the oldest frame not yet written has waited,
	// in seconds; 0 when nothing waits.
	OldestWait float64 `json:"oldest_wait_seconds"`
	Compressed bool    `json:"compressed,omitempty"` // permessage-deflate
}

// Room is one of a connection's rooms: how far behind the room's head the
// connection is, in events and bytes queued for it.
type Room struct {
	Room        string `json:"room"`
	Lag         int    `json:"lag"`
	QueuedBytes int    `json:"queued_bytes"`
	Conflate    bool   `json:"conflate,omitempty"`
}

// Page is /connz's answer: the connections that match the query, sorted,
// from Offset on, at most Limit of them; Total is how many matched.
type Page struct {
	Node        string `json:"node"`
	Total       int    `json:"total"`
	Offset      int    `json:"offset"`
	Limit       int    `json:"limit"`
	Sort        string `json:"sort"`
	Connections []Conn `json:"connections"`
}

// RoomStats is one room of a node as /roomz shows it.
type RoomStats struct {
	Room    string `json:"room"`
	Members int    `json:"members"`
	// Head is the last seq the node delivered in the room.
	Head uint64 `json:"head"`
	// TailBytes are the bytes of recent events the node keeps for resumes.
	TailBytes int `json:"tail_bytes"`
	// EventsPerSecond is the room's event rate on this node over the last
	// sampling interval.
	EventsPerSecond float64 `json:"events_per_second"`
}

// Rooms is /roomz's answer.
type Rooms struct {
	Node  string      `json:"node"`
	Total int         `json:"total"`
	Rooms []RoomStats `json:"rooms"`
}
