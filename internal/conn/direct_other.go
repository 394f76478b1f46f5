//go:build !unix

package conn

import "syscall"

// writeNonBlocking writes nothing here: every frame goes through the writer.
func writeNonBlocking(syscall.RawConn, []byte) int { return 0 }
