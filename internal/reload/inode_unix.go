//go:build unix

package reload

import (
	"io/fs"
	"syscall"
)

// inode is the file's inode number: a file replaced by a rename shows as
// changed even when its size and modification time (kept at the kernel's
// tick, a few milliseconds) are the same.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
