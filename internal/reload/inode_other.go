//go:build !unix

package reload

import "io/fs"

// inode is not known here: size and modification time stand alone.
func inode(fs.FileInfo) uint64 { return 0 }
