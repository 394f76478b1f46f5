package wire

import (
	"fmt"

	"github.com/gobwas/ws"
)

// Error codes of docs/protocol.md section 3.
const (
	CodeBadRequest           = "BAD_REQUEST"
	CodeInvalidRoom          = "INVALID_ROOM"
	CodeUnauthenticated      = "UNAUTHENTICATED"
	CodeForbidden            = "FORBIDDEN"
	CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"
	CodeRateLimited          = "RATE_LIMITED"
	CodeUnavailable          = "UNAVAILABLE"
	CodeCancelled            = "CANCELLED" // a subscribe superseded while it caught up
	CodeInternal             = "INTERNAL"
)

// Close codes of docs/protocol.md section 3.
const (
	CloseNormal       ws.StatusCode = 1000
	CloseGoingAway    ws.StatusCode = 1001 // draining
	CloseProtocol     ws.StatusCode = 1002 // malformed WebSocket framing
	CloseUnsupported  ws.StatusCode = 1003 // binary frames
	ClosePolicy       ws.StatusCode = 1008 // authentication failed
	CloseTooBig       ws.StatusCode = 1009 // frame over the inbound limit
	CloseAbnormal     ws.StatusCode = 1006 // never sent: the socket ended without a close
	CloseInternal     ws.StatusCode = 1011
	CloseTokenExpired ws.StatusCode = 4001
	CloseSlowConsumer ws.StatusCode = 4008
	CloseStreamReset  ws.StatusCode = 4010 // the stream was recreated
	CloseRebalance    ws.StatusCode = 4012 // shed to rebalance the cluster
	CloseRateLimited  ws.StatusCode = 4029
)

// ReasonRebalance is the reason of a 4012 close.
const ReasonRebalance = "rebalance: reconnect now and resume"

// ReconnectAtOnce reports whether a close with code asks the client to
// reconnect at once, without the backoff it keeps for failures, and resume
// each room with since (and epoch): 4012, a node shedding connections to
// rebalance the cluster. The node is healthy and nothing was lost; waiting
// would only delay the client's events.
func ReconnectAtOnce(code ws.StatusCode) bool { return code == CloseRebalance }

// Message types.
const (
	TypeRequest  = "request"
	TypeResponse = "response"
	TypeEvent    = "event"
	TypeError    = "error"
	TypePing     = "ping"
	TypePong     = "pong"
)

// Request events and server-originated event names.
const (
	EventSubscribe   = "subscribe"
	EventUnsubscribe = "unsubscribe"
	EventAuth        = "auth"
	EventRooms       = "rooms" // the rooms with recent events the token may read
	EventDraining    = "server.draining"
)

// Error is a protocol error: what the client is told in an error message.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
