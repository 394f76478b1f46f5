//go:build linux

package netpoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// dataOf points at an epoll event's 64-bit user data, which x/sys/unix
// splits into Fd and Pad on every Linux architecture.
func dataOf(ev *unix.EpollEvent) unsafe.Pointer { return unsafe.Pointer(&ev.Fd) }
