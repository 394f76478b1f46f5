package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Cores is which CPUs each side of a measurement may run on, so the highest
// passing rates measure the servers and not a load generator starved of
// CPU by them (or the other way round). Empty lists leave a side unpinned.
type Cores struct {
	Servers []int // every server process a scenario starts
	Clients []int // the bench process itself: the load generator and the publisher
}

// SplitCores gives the servers the lower half of the CPUs this process may
// run on (the larger half, when odd) and the clients the rest. With fewer
// than two CPUs nothing is pinned.
func SplitCores() Cores {
	cpus := allowedCPUs()
	if len(cpus) < 2 {
		return Cores{}
	}
	half := (len(cpus) + 1) / 2
	return Cores{Servers: cpus[:half], Clients: cpus[half:]}
}

// String is the split as the report prints it: "servers 0, clients 1".
func (c Cores) String() string {
	if len(c.Servers) == 0 && len(c.Clients) == 0 {
		return "not pinned"
	}
	return "servers " + FormatCPUList(c.Servers) + ", clients " + FormatCPUList(c.Clients)
}

// Check refuses a split whose sides share a CPU, or that names a CPU this
// process may not run on (outside its affinity, or absent).
func (c Cores) Check() error {
	allowed := allowedCPUs()
	var errs []error
	for _, side := range []struct {
		name string
		cpus []int
	}{{"servers", c.Servers}, {"clients", c.Clients}} {
		var out []int
		for _, cpu := range side.cpus {
			if !slices.Contains(allowed, cpu) {
				out = append(out, cpu)
			}
		}
		if len(out) > 0 {
			errs = append(errs, fmt.Errorf("the %s' CPUs %s are not among those this process may use (%s)", side.name, FormatCPUList(out), FormatCPUList(allowed)))
		}
	}
	var shared []int
	for _, cpu := range c.Servers {
		if slices.Contains(c.Clients, cpu) {
			shared = append(shared, cpu)
		}
	}
	if len(shared) > 0 {
		errs = append(errs, fmt.Errorf("the servers and the clients share CPUs %s: give each side its own", FormatCPUList(shared)))
	}
	return errors.Join(errs...)
}

// ParseCPUList reads a CPU list as taskset and /proc write it: "0",
// "0-3", "0,2,4-5". The result is sorted and without repeats.
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			return nil, fmt.Errorf("CPU list %q: %q is not a CPU number", s, lo)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return nil, fmt.Errorf("CPU list %q: %q is not a range", s, part)
			}
		}
		if last >= 1024 {
			return nil, fmt.Errorf("CPU list %q: CPU %d is out of range", s, last)
		}
		for cpu := first; cpu <= last; cpu++ {
			cpus = append(cpus, cpu)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

// FormatCPUList writes cpus as ParseCPUList reads them, ranges joined.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// errPinUnsupported is Pin's error where the OS has no per-thread affinity.
var errPinUnsupported = errors.New("pinning to CPUs is supported on Linux only")

// PinSelf pins every thread of this process to cpus and sets GOMAXPROCS to
// their number, so the runtime does not run more threads than it may use
// (nothing when cpus is empty). restore (never nil) gives the process back
// the CPUs and GOMAXPROCS it had: a scenario may run inside a longer-lived
// process, as the command's tests run it.
func PinSelf(cpus []int) (restore func(), err error) {
	if len(cpus) == 0 {
		return func() {}, nil
	}
	before, procs := allowedCPUs(), runtime.GOMAXPROCS(0)
	if err := Pin(os.Getpid(), cpus); err != nil {
		return func() {}, err
	}
	runtime.GOMAXPROCS(len(cpus))
	return func() {
		_ = Pin(os.Getpid(), before)
		runtime.GOMAXPROCS(procs)
	}, nil
}

// pinnedEnv is the environment of a child pinned to cpus: a Go child's
// GOMAXPROCS is set at its start, before Pin reaches it.
func pinnedEnv(env []string, cpus []int) []string {
	if len(cpus) == 0 {
		return env
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	return append(env, "GOMAXPROCS="+strconv.Itoa(len(cpus)))
}
