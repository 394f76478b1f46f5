package bench

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	good := map[string][]int{"0": {0}, "0-3": {0, 1, 2, 3}, "2,0,4-5": {0, 2, 4, 5}, "1,1": {1}, " 3 ": {3}}
	for in, want := range good {
		got, err := ParseCPUList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, _ := ParseCPUList(FormatCPUList(got)); !slices.Equal(back, want) {
			t.Errorf("FormatCPUList(%v) = %q does not read back", got, FormatCPUList(got))
		}
	}
	if got := FormatCPUList([]int{0, 1, 2, 5, 7, 8}); got != "0-2,5,7-8" {
		t.Errorf("FormatCPUList = %q, want 0-2,5,7-8", got)
	}
	for _, bad := range []string{"", "a", "-1", "3-1", "1-", "0,,1", "5000"} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) took it", bad)
		}
	}
}

// TestPinChild pins a real child process, threads and all, and reads the
// kernel's record of where it may run.
func TestPinChild(t *testing.T) {
	if runtime.GOOS != "linux" {
		if err := Pin(os.Getpid(), []int{0}); err == nil {
			t.Fatal("Pin succeeded where it is unsupported")
		}
		return
	}
	cpus := allowedCPUs()
	if len(cpus) == 0 {
		t.Fatal("allowedCPUs found no CPU this process may run on")
	}
	last := cpus[len(cpus)-1:]
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := Pin(cmd.Process.Pid, last); err != nil {
		t.Fatal(err)
	}
	tids, err := threads(cmd.Process.Pid)
	if err != nil || len(tids) == 0 {
		t.Fatalf("threads = %v, %v", tids, err)
	}
	for _, tid := range tids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(tid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		want := "Cpus_allowed_list:\t" + FormatCPUList(last)
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("thread %d not pinned: want %q in its status", tid, want)
		}
	}
	if err := Pin(1<<30, last); err == nil {
		t.Error("pinning a process that does not exist succeeded")
	}
}

func TestSplitCores(t *testing.T) {
	c := SplitCores()
	cpus := allowedCPUs()
	if len(cpus) < 2 {
		if len(c.Servers)+len(c.Clients) != 0 {
			t.Fatalf("SplitCores on %d CPUs pinned %v", len(cpus), c)
		}
		return
	}
	if len(c.Servers) == 0 || len(c.Clients) == 0 || len(c.Servers) < len(c.Clients) {
		t.Fatalf("SplitCores = %v of %v", c, cpus)
	}
	if got := append(slices.Clone(c.Servers), c.Clients...); !slices.Equal(got, cpus) {
		t.Fatalf("SplitCores = %v: not a split of %v", c, cpus)
	}
	if env := pinnedEnv([]string{"A=1", "GOMAXPROCS=8"}, c.Servers); !slices.Contains(env, "GOMAXPROCS="+strconv.Itoa(len(c.Servers))) || slices.Contains(env, "GOMAXPROCS=8") {
		t.Fatalf("pinnedEnv = %v", env)
	}
}

func TestCoresCheck(t *testing.T) {
	allowed := allowedCPUs()
	if len(allowed) < 2 {
		t.Skip("needs two CPUs")
	}
	if err := SplitCores().Check(); err != nil {
		t.Errorf("the default split: %v", err)
	}
	if err := (Cores{}).Check(); err != nil {
		t.Errorf("no pinning: %v", err)
	}
	overlap := Cores{Servers: allowed[:1], Clients: allowed[:2]}
	if err := overlap.Check(); err == nil || !strings.Contains(err.Error(), "share CPUs "+strconv.Itoa(allowed[0])) {
		t.Errorf("overlapping sides: %v, want them refused", err)
	}
	absent := Cores{Servers: []int{1023}, Clients: allowed[:1]}
	if err := absent.Check(); err == nil || !strings.Contains(err.Error(), "servers' CPUs 1023") {
		t.Errorf("a CPU not allowed: %v, want it refused", err)
	}
}
