// Package netpoll tells when idle sockets become readable, for many sockets
// on one goroutine: a connection with nothing to read needs no goroutine
// blocked in a read (and no stack) while it waits. It is Linux's epoll,
// used one-shot: a watch fires once, then waits to be rearmed, so the
// reader that the callback starts owns the socket until it hands it back.
//
// Go's own poller keeps watching the same sockets for the reads and writes
// made through net.Conn; this one only says when to start reading.
package netpoll

import (
	"errors"
	"syscall"
)

// ErrUnsupported is returned by New where there is no epoll, and by Add for
// a connection without a file descriptor of its own.
var ErrUnsupported = errors.New("netpoll: not supported here")

// Conn is what a watched connection must offer: its file descriptor.
type Conn = syscall.Conn
