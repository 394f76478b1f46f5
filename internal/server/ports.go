package server

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// listen opens a TCP listener for what (the WebSocket listener, the admin
// listener), saying plainly when the port is taken.
func listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, portError(what, addr, err)
	}
	return ln, nil
}

// checkFree fails at once when addr's port is taken, for a listener
// another component opens later and would only time out on (the embedded
// NATS server). A port of 0 or -1 means any free one.
func checkFree(what, addr string) error {
	if strings.HasSuffix(addr, ":0") || strings.HasSuffix(addr, ":-1") {
		return nil
	}
	ln, err := listen(what, addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// portError names the flag's listener and, for a taken port, what to do.
func portError(what, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %s is already in use by another process (roomcast check --free shows the usual ports; choose another address): %w", what, addr, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
