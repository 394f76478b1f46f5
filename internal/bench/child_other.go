//go:build !linux

package bench

import "os/exec"

// setChildAttrs does nothing here: only Linux can tie a child's life to its
// parent's; Close still kills the servers when the bench ends normally.
func setChildAttrs(*exec.Cmd) {}
