package roomcast

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message is what Next hands over: an *Event, a *Subscribed or a *Notice.
type Message interface{ isMessage() }

// Event is one event of a room, handed over once, in seq order.
type Event struct {
	Room string // the room, "pool:p1"
	Seq  uint64 // the stream sequence: grows within a room, not contiguous
	Name string // the event's name, "worker.status_changed"
	TS   string // when it was stored, RFC 3339 in UTC with milliseconds, as the node sent it
	// Key is the event's key ("worker:w1") when it has one; KeyDeleted
	// says it ends its key.
	Key        string
	KeyDeleted bool
	// Conflated is how many superseded events of the room a conflating
	// subscription skipped just before this one (not a gap).
	Conflated int
	Data      json.RawMessage // absent when the payload had none
}

// Time is TS parsed; the zero time when it is absent or malformed.
func (e *Event) Time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, e.TS)
	return t
}

// Subscribed is a subscribe response: the room is followed from here.
type Subscribed struct {
	Room string
	// Seq is where live delivery starts (the events up to it came
	// before); with a State, the position the state is as of.
	Seq uint64
	// Epoch names the stream Seq is in: store it with the seqs that
	// follow, and give both back in SubscribeOptions to resume.
	Epoch    string
	Replayed int // events sent before the response
	// Recovered is false when events between the kept position and the
	// first event handed over since are gone (retention, or a recreated
	// stream). The client goes on; the application decides what the gap
	// means (see the README).
	Recovered bool
	// Resumed is true for every subscribe of the room after its first
	// (after a reconnection, a retry, or a Subscribe of the application's),
	// false for the room's first subscribe.
	Resumed bool
	// State is the room's state when the subscribe asked for it and the
	// node sent it (the latest event of every key, in seq order): the
	// application replaces what it built from the room's events with it.
	// It is nil when there is none, and non-nil (maybe empty) when there is.
	State []Event
}

// NoticeKind names a notice; the words are the conformance contract's
// (clients/conformance/README.md).
type NoticeKind string

// The notices.
const (
	// Connected: a connection is open and its token accepted.
	Connected NoticeKind = "connected"
	// Disconnected: a connection ended (Code: its close code, 1006 when
	// there was no close frame), or an attempt failed before one opened
	// (Code 0). Text says why, and when the next attempt is (Retry).
	Disconnected NoticeKind = "disconnected"
	// Draining: the node sent server.draining; it closes with 1001 next.
	Draining NoticeKind = "draining"
	// RequestError: a request was refused (Error, Room, Text).
	RequestError NoticeKind = "request_error"
	// TokenRefreshed: a new token was accepted on the open connection.
	TokenRefreshed NoticeKind = "token_refreshed"
	// TokenRefreshFailed: the refresh callback failed, or the node
	// refused its token (Error).
	TokenRefreshFailed NoticeKind = "token_refresh_failed"
	// BadInput: the node sent something the client could not read; it
	// was skipped (Text says what).
	BadInput NoticeKind = "bad_input"
)

// Notice is anything else the client tells the application.
type Notice struct {
	Kind  NoticeKind
	Code  int           // a close code (Disconnected), or 0
	Error string        // an error code such as "FORBIDDEN" (RequestError, TokenRefreshFailed), or ""
	Room  string        // the room a RequestError is about, or ""
	Text  string        // what happened, for people
	URL   string        // the URL of the connection (Connected, Disconnected)
	Retry time.Duration // Disconnected: the wait before the next attempt; -1 when the client stops
}

func (*Event) isMessage()      {}
func (*Subscribed) isMessage() {}
func (*Notice) isMessage()     {}

// ErrClosed is what Next returns once the client was closed (Close, or
// the end of Connect's context).
var ErrClosed = errors.New("roomcast: client closed")

// StopError is why the client stopped for good: reconnecting would not
// help (a token refused or expired with no new one, a message the node
// refused, a certificate not trusted, a node that requires a token).
type StopError struct {
	Code      int    // the close code that stopped it, or 0
	ErrorCode string // the error code that stopped it ("UNAUTHENTICATED"), or ""
	Reason    string // the close's reason, or what happened
	err       error  // the cause, when it was an error of the client's (a certificate)
}

func (e *StopError) Error() string {
	switch {
	case e.Code != 0:
		return fmt.Sprintf("roomcast: stopped: closed by the node with %d %s", e.Code, e.Reason)
	case e.ErrorCode != "":
		return fmt.Sprintf("roomcast: stopped: %s: %s", e.ErrorCode, e.Reason)
	}
	return "roomcast: stopped: " + e.Reason
}

// Unwrap is the cause (a *tls.CertificateVerificationError, say), if any.
func (e *StopError) Unwrap() error { return e.err }
