package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"time"
)

// The server's own CPU time and memory come from /proc, so a measurement
// counts the server process alone (not the load generator, which runs on the
// same machine) and works the same for roomcast and the reference, which has
// no Prometheus endpoint.

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (sysconf would need cgo).
const clockTicks = 100

// procCPU is the CPU time (user + system) process pid has used, in seconds.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("server CPU time: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("server CPU time: malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	// After the name: state(3) ... utime(14) stime(15); f[0] is field 3.
	if len(f) < 13 {
		return 0, fmt.Errorf("server CPU time: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("server CPU time of pid %d: %w", pid, err)
	}
	return float64(utime+stime) / clockTicks, nil
}

// procRSS is the resident memory of process pid, in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("server memory: %w", err)
	}
	for line := range bytes.Lines(b) {
		v, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("server memory: VmRSS of pid %d: %w", pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("server memory: no VmRSS in /proc/%d/status", pid)
}

// cpuWindow measures a server's CPU time over a window; errors go to the
// tally (stage "cpu"), and a zero pid measures nothing.
type cpuWindow struct {
	pid   int
	start float64
	ok    bool
}

func (w *cpuWindow) begin(t *tally) {
	if w.pid == 0 {
		return
	}
	s, err := procCPU(w.pid)
	if err != nil {
		t.add("cpu", err)
		return
	}
	w.start, w.ok = s, true
}

// end returns the CPU seconds since begin, 0 when unmeasured.
func (w *cpuWindow) end(t *tally) float64 {
	if !w.ok {
		return 0
	}
	s, err := procCPU(w.pid)
	if err != nil {
		t.add("cpu", err)
		return 0
	}
	return s - w.start
}

// settledRSS reads pid's RSS until two readings settlePoll apart are within
// settleTolerance (at most settleWait), and returns the last.
func settledRSS(ctx context.Context, pid int) (int64, error) {
	rss, _, _, err := settle(ctx, pid)
	return rss, err
}

func settle(ctx context.Context, pid int) (rss int64, settled bool, took time.Duration, err error) {
	start := time.Now()
	if rss, err = procRSS(pid); err != nil {
		return 0, false, 0, err
	}
	for time.Since(start) < settleWait {
		if !sleepUntil(ctx, time.Now().Add(settlePoll)) {
			return 0, false, 0, ctx.Err()
		}
		next, err := procRSS(pid)
		if err != nil {
			return 0, false, 0, err
		}
		settled = math.Abs(float64(next-rss)) < settleTolerance*float64(rss)
		rss = next
		if settled {
			break
		}
	}
	return rss, settled, time.Since(start), nil
}

// measureIdleProc is measureIdle for a server measured through /proc:
// the subscriptions are known to be in place (each connection was answered
// after subscribing), so it waits for the RSS to settle and divides its
// growth by the connections added.
func measureIdleProc(ctx context.Context, log *slog.Logger, pid int, before int64, added int) (*IdleReport, error) {
	rss, settled, took, err := settle(ctx, pid)
	if err != nil {
		return nil, err
	}
	log.Info("server with the connections", "pid", pid, "rss_bytes", rss, "settled", settled)
	rep := &IdleReport{PID: pid, RSSBefore: before, RSSAfter: rss, Settled: settled, SettleSeconds: took.Seconds()}
	if added > 0 {
		rep.BytesPerConn = float64(rss-before) / float64(added)
	}
	return rep, nil
}
