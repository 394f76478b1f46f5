// Package roomcast is the Go client of roomcast, the WebSocket
// broadcaster of pool and workflow events: it follows rooms, and hands
// each of their events over once, in order, across reconnections, node
// restarts and rebalances, or says when some are gone.
//
// It does what docs/protocol.md section 3, "What a client does", says,
// as the JavaScript and Python clients do: it tries its URLs in turn,
// sends its token with the upgrade, subscribes every room, keeps each
// room's last seq and epoch and resumes with them, drops duplicates
// (holding the events of a resume until its response tells whether the
// stream was recreated), reconnects at once after a drain or a rebalance
// and with backoff after a failure, refreshes its token on the open
// connection, pings a silent node, and stops for good only when
// reconnecting would not help.
//
// Connect starts a client; Next hands over, in the order they happen,
// every *Event, every *Subscribed (a subscribe response) and every
// *Notice (connected, disconnected, draining, a refused request, a token
// refreshed or not, bad input skipped). Its error is final: a *StopError,
// or ErrClosed after Close.
//
// Next reads from a bounded buffer: an application that stops calling it
// stops the client reading its socket, the node closes the connection as
// too slow (4008), and the client resumes, losing nothing, once Next is
// called again.
package roomcast
