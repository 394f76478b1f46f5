package bench

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill a server the bench started when the
// bench itself dies (killed, crashed), so no server outlives its bench.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
