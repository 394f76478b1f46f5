package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// The storm scenario (issue 18): attackers replaying a long room from the
// start over and over, each reading a little and giving up, must not
// starve everyone else's stream reads. It measures, without and with the
// attackers, how long another room's resume takes and the latency of a
// third room's live events, and what the attackers cost in stream
// requests per event they were sent.

// Rooms of the storm scenario.
const (
	stormRoom     = "bench:storm"  // the long room the attackers replay
	stormLiveRoom = "bench:live"   // published at a fixed rate, read by one client
	stormResume   = "bench:resume" // prefix of the rooms the resumer resumes, one a repeat
)

// Bounds of an attacker's loop: each round is a subscribe and an
// unsubscribe, at most one round per stormRoundGap (20 messages a second at
// most, under the default rate limit of 50).
const (
	stormRead     = 100 // events an attacker reads before it gives up
	stormRoundGap = 100 * time.Millisecond
	stormWarmUp   = time.Second // attackers run this long before measuring
)

// StormConfig is what the storm measurement does.
type StormConfig struct {
	URL      string // the edge's WebSocket URL
	NATSURL  string
	AdminURL string // the edge's admin base URL, for its stream requests
	Prefix   string // NATS subject prefix, bus.DefaultPrefix when empty

	Events    int           // stored in the attacked room
	Attackers int           // connections replaying it
	Behind    int           // events the resumer missed
	Resumes   int           // the resumer's repeats per phase
	LiveRate  float64       // events a second published to the live room
	Duration  time.Duration // each phase's measurement, the resumes spread over it
	Timeout   time.Duration // bounds each phase

	Logger *slog.Logger
}

// StormPhase is one phase's figures: without attackers (baseline) or with.
type StormPhase struct {
	Attackers        int     `json:"attackers"`
	ResumeP50        float64 `json:"resume_p50_ms"` // subscribe with since to its response
	ResumeMax        float64 `json:"resume_max_ms"`
	Live             Latency `json:"live"`
	LiveLost         int64   `json:"live_lost"`
	AttackRounds     int64   `json:"attack_rounds"`
	AttackEvents     int64   `json:"attack_events"`      // events the attackers were sent
	StreamRequests   float64 `json:"stream_requests"`    // during the measurement
	RequestsPerEvent float64 `json:"requests_per_event"` // per attack event; 0 without attackers
	Problem          string  `json:"problem,omitempty"`
}

// StormReport is the outcome of the storm measurement.
type StormReport struct {
	Events   int        `json:"events"`
	Baseline StormPhase `json:"baseline"`
	Attack   StormPhase `json:"attack"`
}

// RunStorm stores cfg.Events events in one room, then measures a baseline
// phase and an attack phase (see StormPhase).
func RunStorm(ctx context.Context, cfg StormConfig) (*StormReport, error) {
	preloadDefaults(&cfg.Prefix, &cfg.Timeout, &cfg.Logger)
	nc, js, err := connectPreloader(cfg.NATSURL, "roomcast bench storm")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	st := &storm{cfg: cfg, js: js, subj: bus.Subjects{Prefix: cfg.Prefix}, admin: newAdmin(cfg.AdminURL, "")}
	cfg.Logger.Info("storing the attacked room", "room", stormRoom, "events", cfg.Events)
	if _, _, err := preload(ctx, js, st.subject(stormRoom), cfg.Events); err != nil {
		return nil, err
	}
	rep := &StormReport{Events: cfg.Events}
	for _, ph := range []struct {
		name      string
		attackers int
		out       *StormPhase
	}{{"baseline", 0, &rep.Baseline}, {"attack", cfg.Attackers, &rep.Attack}} {
		cfg.Logger.Info("storm phase", "phase", ph.name, "attackers", ph.attackers)
		if err := st.phase(ctx, ph.name, ph.attackers, ph.out); err != nil {
			return rep, err
		}
		o := ph.out
		cfg.Logger.Info("storm phase measured", "phase", ph.name, "resume_p50_ms", o.ResumeP50, "resume_max_ms", o.ResumeMax,
			"live_p50_ms", o.Live.P50, "live_p99_ms", o.Live.P99, "live_samples", o.Live.Samples, "attack_rounds", o.AttackRounds,
			"attack_events", o.AttackEvents, "stream_requests", o.StreamRequests, "problem", o.Problem)
	}
	return rep, nil
}

// storm is one RunStorm's state.
type storm struct {
	cfg   StormConfig
	js    jetstream.JetStream
	subj  bus.Subjects
	admin *admin
}

func (st *storm) subject(room string) string { return st.subj.Room(wire.MustRoom(room)) }

// phase runs the live room and attackers attackers, and measures the
// resumer cfg.Resumes times meanwhile.
func (st *storm) phase(ctx context.Context, name string, attackers int, out *StormPhase) error {
	cfg := st.cfg
	out.Attackers = attackers
	// The resumer's rooms, stored first: Behind events each.
	sinces := make([]uint64, cfg.Resumes)
	for i := range sinces {
		first, _, err := preload(ctx, st.js, st.subject(fmt.Sprintf("%s-%s-%d", stormResume, name, i)), cfg.Behind)
		if err != nil {
			return err
		}
		sinces[i] = first - 1
	}
	// Timeout bounds what the phase waits for beyond its own length.
	pctx, stop := context.WithTimeout(ctx, stormWarmUp+cfg.Duration+cfg.Timeout)
	defer stop()
	live, err := startLive(pctx, cfg, st.js, st.subject(stormLiveRoom))
	if err != nil {
		return err
	}
	defer live.stop() // on an early return; the figures' call below is the first
	var rounds, events atomic.Int64
	var attacks sync.WaitGroup
	actx, stopAttack := context.WithCancel(pctx)
	defer func() { stopAttack(); attacks.Wait() }()
	for range attackers {
		attacks.Go(func() { attack(actx, cfg.URL, &rounds, &events) })
	}
	if attackers > 0 && !sleepUntil(pctx, time.Now().Add(stormWarmUp)) {
		return fmt.Errorf("storm phase %s, warming up: %w", name, pctx.Err())
	}
	before, err := st.admin.streamRequests(pctx)
	if err != nil {
		return err
	}
	live.measure.Store(true)
	start := time.Now()
	rounds0, events0 := rounds.Load(), events.Load()
	took, resumeErr := resumeRepeats(pctx, cfg, name, sinces)
	if !sleepUntil(pctx, start.Add(cfg.Duration)) {
		return fmt.Errorf("storm phase %s: %w", name, pctx.Err())
	}
	live.measure.Store(false)
	after, err := st.admin.streamRequests(pctx)
	if err != nil {
		return err
	}
	stopAttack()
	attacks.Wait()
	out.AttackRounds, out.AttackEvents = rounds.Load()-rounds0, events.Load()-events0
	out.StreamRequests = after - before
	if out.AttackEvents > 0 {
		out.RequestsPerEvent = out.StreamRequests / float64(out.AttackEvents)
	}
	if len(took) > 0 {
		slices.Sort(took)
		out.ResumeP50, out.ResumeMax = ms(took[(len(took)-1)/2]), ms(took[len(took)-1])
	}
	out.Live, out.LiveLost = live.stop()
	var problems []error
	if resumeErr != nil {
		problems = append(problems, resumeErr)
	}
	if out.LiveLost > 0 {
		problems = append(problems, fmt.Errorf("%d live events not received", out.LiveLost))
	}
	if err := errors.Join(problems...); err != nil {
		out.Problem = err.Error()
	}
	return ctx.Err()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// resumeRepeats resumes each of the phase's rooms in turn, on a fresh
// connection, spread over cfg.Duration, and returns the times from
// subscribe to its response.
func resumeRepeats(ctx context.Context, cfg StormConfig, phase string, sinces []uint64) ([]time.Duration, error) {
	var took []time.Duration
	start := time.Now()
	for i, since := range sinces {
		if !sleepUntil(ctx, start.Add(cfg.Duration*time.Duration(i)/time.Duration(len(sinces)))) {
			return took, ctx.Err()
		}
		room := fmt.Sprintf("%s-%s-%d", stormResume, phase, i)
		d, err := resumeOnce(ctx, cfg, room, since)
		if err != nil {
			return took, fmt.Errorf("resume %d of %d: %w", i+1, len(sinces), err)
		}
		took = append(took, d)
	}
	return took, nil
}

// resumeOnce subscribes to room with since and waits for the response,
// checking that the cfg.Behind missed events came first.
func resumeOnce(ctx context.Context, cfg StormConfig, room string, since uint64) (time.Duration, error) {
	c, err := dialEdge(ctx, cfg.URL)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { _ = c.NetConn().Close() })()
	start := time.Now()
	if err := c.Subscribe("resume", room, &since); err != nil {
		return 0, err
	}
	got, err := catchUp(c, room, cfg.Behind, start.Add(cfg.Timeout))
	if err != nil {
		return 0, fmt.Errorf("%d of %d missed events: %w", got, cfg.Behind, err)
	}
	if err := waitAnswer(c, "resume", start.Add(cfg.Timeout), nil); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitAnswer reads c until the answer to request id, counting the events
// it passes in events (when not nil); an error answer is returned as one.
func waitAnswer(c *client.Conn, id string, deadline time.Time, events *atomic.Int64) error {
	for {
		p, err := c.ReadText(deadline)
		if err != nil {
			return err
		}
		if isEvent(p) {
			if events != nil {
				events.Add(1)
			}
			continue
		}
		var m wire.Message
		if err := json.Unmarshal(p, &m); err != nil {
			return fmt.Errorf("server sent invalid JSON: %w", err)
		}
		if m.ID != id || (m.Type != wire.TypeResponse && m.Type != wire.TypeError) {
			continue
		}
		if m.Type == wire.TypeError {
			return fmt.Errorf("request %s refused: %s", id, m.Data)
		}
		return nil
	}
}

// isEvent tells an event frame (wire.EventFrame's layout) without decoding it.
func isEvent(p []byte) bool { return bytes.HasPrefix(p, []byte(`{"type":"event"`)) }

// attack loops until ctx ends: subscribe to the attacked room from the
// start, read stormRead events, unsubscribe, and read on until the
// unsubscribe is answered, at most one round a stormRoundGap.
func attack(ctx context.Context, url string, rounds, events *atomic.Int64) {
	c, err := dialEdge(ctx, url)
	if err != nil {
		return // the phase goes on with fewer; its rounds say so
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { _ = c.NetConn().Close() })()
	deadline, _ := ctx.Deadline()
	zero := uint64(0)
	for next := time.Now(); sleepUntil(ctx, next); next = next.Add(stormRoundGap) {
		if now := time.Now(); next.Before(now) {
			next = now // a slow round is not made up for
		}
		if c.Subscribe("a", stormRoom, &zero) != nil {
			return
		}
		for n := 0; n < stormRead; {
			p, err := c.ReadText(deadline)
			if err != nil {
				return
			}
			if isEvent(p) {
				n++
				events.Add(1)
			}
		}
		if c.Request(wire.EventUnsubscribe, "u", map[string]string{"channel": stormRoom}) != nil {
			return
		}
		if waitAnswer(c, "u", deadline, events) != nil {
			return
		}
		rounds.Add(1)
	}
}

// live publishes to the live room at a fixed rate and measures the
// latency of its events at one subscriber while measure is set.
type live struct {
	measure atomic.Bool
	stopped sync.Once
	hist    histogram // owned by the reader until done
	sent    atomic.Int64
	got     atomic.Int64 // events received while measuring, of those sent meanwhile
	cancel  context.CancelFunc
	done    sync.WaitGroup
	c       *client.Conn
}

// startLive subscribes a client to the live room and starts publishing.
func startLive(ctx context.Context, cfg StormConfig, js jetstream.JetStream, subject string) (*live, error) {
	c, err := dialEdge(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.Timeout)
	if err := c.Subscribe("live", stormLiveRoom, nil); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := waitAnswer(c, "live", deadline, nil); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("subscribe to the live room: %w", err)
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &live{cancel: cancel, c: c}
	l.done.Go(func() { l.publish(lctx, cfg.LiveRate, js, subject) })
	l.done.Go(func() { l.read(deadline) })
	return l, nil
}

// publish sends a tick at rate until ctx ends; ticks sent while measuring
// carry an odd counter, the others an even one, so the reader knows which
// to count.
func (l *live) publish(ctx context.Context, rate float64, js jetstream.JetStream, subject string) {
	start := time.Now()
	for i := int64(0); sleepUntil(ctx, start.Add(time.Duration(float64(i)*float64(time.Second)/rate))); i++ {
		n := uint64(2 * i)
		if l.measure.Load() {
			n++
			l.sent.Add(1)
		}
		if _, err := js.PublishAsync(subject, tickPayload(time.Now().UnixNano(), n)); err != nil {
			return
		}
	}
}

// read records the latency of the measured ticks until the socket closes.
func (l *live) read(deadline time.Time) {
	for {
		p, err := l.c.ReadText(deadline)
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		if _, data, ok := parseEventFrame(p, stormLiveRoom); ok {
			if t, ok := parseTick(data); ok && t.N%2 == 1 {
				l.hist.record(now - t.SentNS)
				l.got.Add(1)
			}
		}
	}
}

// stop waits a moment for the last measured events, then stops publishing
// and reading, and returns the latencies and how many measured events did
// not arrive.
func (l *live) stop() (Latency, int64) {
	l.stopped.Do(func() {
		for wait := time.Now().Add(liveGrace); l.got.Load() < l.sent.Load() && time.Now().Before(wait); {
			time.Sleep(10 * time.Millisecond)
		}
		l.cancel()
		_ = l.c.NetConn().Close()
		l.done.Wait()
		_ = l.c.Close()
	})
	var m mergedHistogram
	m.add(&l.hist)
	return m.latency(), l.sent.Load() - l.got.Load()
}

// liveGrace bounds the wait for the live events in flight at the end.
const liveGrace = 5 * time.Second

// stormResumes is how often the scenario's resumer is timed in a phase.
const stormResumes = 10

// stormFigures are the storm scenario's figures, each phase side by side.
func stormFigures(cfg *ScenarioConfig) []figureSpec {
	var specs []figureSpec
	for _, phase := range []string{"no attack", fmt.Sprintf("%d attackers", cfg.Attackers)} {
		specs = append(specs,
			figureSpec{fmt.Sprintf("resume %d behind, to its response, p50 (%s)", cfg.ResumeBehind, phase), "ms", lower},
			figureSpec{fmt.Sprintf("resume %d behind, to its response, max (%s)", cfg.ResumeBehind, phase), "ms", lower},
			figureSpec{fmt.Sprintf("live latency p50 at %g events/s (%s)", cfg.Rate, phase), "ms", lower},
			figureSpec{fmt.Sprintf("live latency p99 at %g events/s (%s)", cfg.Rate, phase), "ms", lower})
	}
	return append(specs, figureSpec{"stream requests per event sent to attackers", "requests", lower})
}

// storm runs the storm measurement on srv and records its figures.
func (sc *scenario) storm(ctx context.Context, srv *Servers, run int) error {
	cfg := sc.cfg
	rep, err := RunStorm(ctx, StormConfig{
		URL: srv.WSURL, NATSURL: srv.NATSURL, AdminURL: srv.AdminURL,
		Events: cfg.Events, Attackers: cfg.Attackers, Behind: cfg.ResumeBehind, Resumes: stormResumes,
		LiveRate: cfg.Rate, Duration: cfg.Duration, Logger: cfg.Logger.With("target", srv.Target),
	})
	if err != nil {
		return err
	}
	figs := stormFigures(cfg)
	for i, ph := range []*StormPhase{&rep.Baseline, &rep.Attack} {
		ok := ph.Problem == ""
		sc.emit(Step{Scenario: cfg.Scenario, Target: srv.Target, Run: run, Step: []string{"baseline", "attack"}[i],
			Rate: cfg.Rate, Connections: ph.Attackers + 2, Rooms: 3,
			Expected: int64(ph.Live.Samples) + ph.LiveLost, Delivered: int64(ph.Live.Samples), Lost: ph.LiveLost,
			P50: ph.Live.P50, P99: ph.Live.P99, Seconds: ph.ResumeP50 / 1000, Passed: ok, Problem: ph.Problem})
		f := figs[4*i:]
		sc.figs.add(f[0], srv.Target, ph.ResumeP50, ok)
		sc.figs.add(f[1], srv.Target, ph.ResumeMax, ok)
		sc.figs.add(f[2], srv.Target, ph.Live.P50, ok)
		sc.figs.add(f[3], srv.Target, ph.Live.P99, ok)
	}
	sc.figs.add(figs[8], srv.Target, rep.Attack.RequestsPerEvent, rep.Attack.AttackEvents > 0)
	return nil
}
