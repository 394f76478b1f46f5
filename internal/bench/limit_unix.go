//go:build unix

package bench

import "syscall"

// openFileLimit is the process's limit on open files (the soft limit, which
// the Go runtime raises to the hard one at start-up), or false if unknown.
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return rl.Cur, true
}
