//go:build !linux

package bench

// Pin is unsupported outside Linux: with cpus given it fails.
func Pin(pid int, cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	return errPinUnsupported
}

// allowedCPUs is unknown outside Linux: nothing is pinned by default.
func allowedCPUs() []int { return nil }
