package bench

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/floor"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// inProcessServers starts the targets inside the test process (the command's
// test covers the child processes): the measured pid is the test's own, so
// the figures mean little, but every path from connections to ratio runs.
func inProcessServers(t *testing.T) func(context.Context, string) (*Servers, error) {
	return func(_ context.Context, target string) (*Servers, error) {
		s := &Servers{Target: target, PID: os.Getpid()}
		switch target {
		case TargetNATS:
			s.WSURL, s.NATSURL = startReference(t)
		case TargetFloor:
			ns := natstest.RunServer(t)
			f, err := floor.Start(floor.Options{NATSURL: ns.ClientURL()})
			if err != nil {
				return nil, err
			}
			t.Cleanup(f.Close)
			s.WSURL, s.NATSURL = f.WSURL(), ns.ClientURL()
		default:
			srv := startNode(t)
			s.WSURL, s.NATSURL = servertest.WSURL(srv), srv.NATSURL()
			s.AdminURL = "http://" + srv.AdminAddr()
		}
		return s, nil
	}
}

func TestBroadcastScenarioOnEveryTarget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var steps []Step
	sum, err := RunScenario(ctx, ScenarioConfig{
		Scenario: ScenarioBroadcast, Targets: Targets, Runs: 1, Conns: 4, Rate: 20, MaxRate: 40,
		Duration: 500 * time.Millisecond, Grace: 15 * time.Second,
		Start:  inProcessServers(t),
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil)),
		OnStep: func(s Step) { mu.Lock(); steps = append(steps, s); mu.Unlock() },
	})
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	var table strings.Builder
	if err := sum.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", table.String())

	delivered := map[string]int64{}
	for _, s := range steps {
		if !s.Passed || s.Lost != 0 {
			t.Errorf("step %+v did not pass", s)
		}
		delivered[s.Target] += s.Delivered
	}
	// Each target: a fixed-rate step (10 events) and a search at 20 and 40
	// events/s (10 and 20), 4 subscribers each.
	for _, target := range Targets {
		if delivered[target] != 4*(10+10+20) {
			t.Errorf("%s: %d deliveries, want %d", target, delivered[target], 4*40)
		}
	}
	if len(sum.Figures) != 2 {
		t.Fatalf("figures %+v, want CPU per delivery and highest passing rate", sum.Figures)
	}
	// CPU time comes in 10ms ticks: a short run may use less than one on
	// a target, a failed measurement without a ratio. The rate always has one.
	for _, f := range sum.Figures {
		measured := f.Targets[TargetRoomcast].Median != nil && f.Targets[TargetNATS].Median != nil
		if (measured || f.Unit != "µs") && (f.Ratio == nil || !(*f.Ratio > 0)) {
			t.Errorf("figure %q: ratio %v, want a positive one", f.Name, f.Ratio)
		}
	}
	if rate := sum.Figures[1].Targets[TargetNATS]; rate.Median == nil || *rate.Median != 40 || rate.AtMax != 1 {
		t.Errorf("highest passing rate on the reference: %+v, want 40 at the maximum", rate)
	}
	if r := sum.Figures[1].ToFloor; r[TargetRoomcast] != 1 || r[TargetNATS] != 1 || len(r) != 2 {
		t.Errorf("highest passing rate's ratios to the floor: %v, want 1 for roomcast and nats", r)
	}
	if !strings.Contains(table.String(), "RATIO to floor") || !strings.HasPrefix(table.String(), "cores: not pinned\n") {
		t.Errorf("the table names neither the cores nor the ratio to the floor:\n%s", table.String())
	}
}

// Cores that share a CPU are refused before anything starts.
func TestScenarioRefusesOverlappingCores(t *testing.T) {
	_, err := RunScenario(t.Context(), ScenarioConfig{
		Scenario: ScenarioBroadcast, Runs: 1, Cores: Cores{Servers: []int{0}, Clients: []int{0}},
		Start: noStart(t),
	})
	if err == nil || !strings.Contains(err.Error(), "share CPUs 0") {
		t.Fatalf("overlapping cores: %v, want them refused", err)
	}
}

func TestResumeCountsReplayedEvents(t *testing.T) {
	srv := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := RunResume(ctx, ResumeConfig{
		URL: servertest.WSURL(srv), NATSURL: srv.NATSURL(), Events: 500, Clients: 10, Behind: 20,
		Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	t.Logf("%+v", rep)
	if rep.Replayed != 500 || rep.ReplayProblem != "" || !(rep.ReplayPerSec > 0) {
		t.Errorf("replayed %d (%s) at %v/s; want 500, no problem, a rate", rep.Replayed, rep.ReplayProblem, rep.ReplayPerSec)
	}
	if rep.CaughtUp != 10 || rep.ResumeProblem != "" || !(rep.AllLiveSeconds > 0) {
		t.Errorf("%d clients caught up (%s) in %vs; want 10, no problem, a time", rep.CaughtUp, rep.ResumeProblem, rep.AllLiveSeconds)
	}
}

// The reference and the floor have no resume: their figures are n/a, and
// no server starts.
func TestResumeScenariosAreNAButOnRoomcast(t *testing.T) {
	for _, c := range []struct{ scenario, target, why string }{
		{ScenarioResume, TargetNATS, "the reference has no resume"},
		{ScenarioStorm, TargetFloor, "the floor has no resume"},
	} {
		sum, err := RunScenario(t.Context(), ScenarioConfig{Scenario: c.scenario, Targets: []string{c.target}, Runs: 1, Start: noStart(t)})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range sum.Figures {
			if r := f.Targets[c.target]; r == nil || r.NA != c.why || r.Median != nil || f.Ratio != nil {
				t.Errorf("%s, figure %q: %+v, want n/a: %s", c.scenario, f.Name, r, c.why)
			}
		}
	}
}

// noStart is the Start of a scenario that must start no server.
func noStart(t *testing.T) func(context.Context, string) (*Servers, error) {
	return func(context.Context, string) (*Servers, error) {
		t.Error("a server was started")
		return nil, os.ErrInvalid
	}
}

func TestSearchSteps(t *testing.T) {
	// The search logic alone, with a fake step: passes up to 1000 events/s.
	for _, c := range []struct {
		start, max, limit, want float64
	}{
		{100, 10_000, 1000, 900},   // doubles to 1600, bisects to within 10%
		{100, 400, 1000, 400},      // stops at the maximum
		{4000, 10_000, 1000, 1000}, // halves down first
	} {
		got, _, err := searchRate(c.start, c.max, func(r float64) (bool, error) { return r <= c.limit, nil })
		if err != nil || got < c.want || got > c.limit {
			t.Errorf("search from %v to %v with limit %v: %v, want %v to %v", c.start, c.max, c.limit, got, c.want, c.limit)
		}
	}
}

func TestChildEnvDropsServeSettings(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "ROOMCAST_JWT_SECRET=s", "MAHAVISHNU_JWT_SECRET=s", "WEBSOCKET_CERT_FILE=f", "PROMETHEUS_PORT=1", "PROMETHEUS_PORTS=x", "HOME=/root"})
	if strings.Join(got, " ") != "PATH=/bin PROMETHEUS_PORTS=x HOME=/root" {
		t.Fatalf("child environment %q", got)
	}
}

// The storm's plumbing, tiny: a baseline without attackers, then attackers
// that go round, a resumer measured in both, live events received and the
// edge's stream requests read.
func TestStormMeasuresBothPhases(t *testing.T) {
	srv := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := RunStorm(ctx, StormConfig{
		URL: servertest.WSURL(srv), NATSURL: srv.NATSURL(), AdminURL: "http://" + srv.AdminAddr(),
		Events: 1000, Attackers: 3, Behind: 20, Resumes: 3, LiveRate: 50, Duration: 300 * time.Millisecond, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatalf("storm: %v", err)
	}
	t.Logf("%+v", rep)
	for name, ph := range map[string]StormPhase{"baseline": rep.Baseline, "attack": rep.Attack} {
		if ph.Problem != "" || !(ph.ResumeP50 > 0) || ph.ResumeMax < ph.ResumeP50 || ph.Live.Samples == 0 || ph.LiveLost != 0 {
			t.Errorf("%s: %+v; want resumes timed, live events all received, no problem", name, ph)
		}
	}
	if b := rep.Baseline; b.Attackers != 0 || b.AttackRounds != 0 || b.AttackEvents != 0 || b.RequestsPerEvent != 0 {
		t.Errorf("baseline: %+v, want no attack", b)
	}
	if a := rep.Attack; a.Attackers != 3 || a.AttackRounds == 0 || a.AttackEvents < a.AttackRounds*stormRead || !(a.StreamRequests > 0) || !(a.RequestsPerEvent > 0) {
		t.Errorf("attack: %+v, want rounds of at least %d events each and the stream requests they cost", a, stormRead)
	}
}
