//go:build unix

package conn

import "syscall"

// writeNonBlocking writes what the socket takes of p at once and returns
// how much; 0 when it takes nothing or fails (the writer, with its
// deadline, will find out why).
func writeNonBlocking(rc syscall.RawConn, p []byte) int {
	n := 0
	_ = rc.Write(func(fd uintptr) bool {
		for {
			m, err := syscall.Write(int(fd), p[n:])
			if err == syscall.EINTR {
				continue
			}
			if err == nil && m > 0 {
				n += m
			}
			return true // never wait: that is the writer's job
		}
	})
	return n
}
