package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// Rooms of the resume scenario.
const (
	replayRoom = "bench:replay" // holds ResumeConfig.Events events, replayed to one client
	resumeRoom = "bench:resume" // holds the events the resuming clients missed
)

// preloadBatch is how many events the resume scenario publishes before
// waiting for their acknowledgements.
const preloadBatch = 512

// ResumeConfig is what the resume measurement does.
type ResumeConfig struct {
	URL string // the edge's WebSocket URL
	// AdminURL is the edge's admin base URL: when set, the replay waits
	// for its state keeper to have read the events stored for it.
	AdminURL string
	NATSURL  string
	Prefix   string // NATS subject prefix, bus.DefaultPrefix when empty

	Events  int           // stored in the replayed room, then replayed to one client
	Clients int           // clients resuming at once
	Behind  int           // events each of them missed
	Timeout time.Duration // for each of the two measurements; 0: 2 minutes

	Logger *slog.Logger
}

// ResumeReport is the outcome of the resume measurement.
type ResumeReport struct {
	Events         int     `json:"events"`
	Replayed       int64   `json:"replayed"` // events the client received in order
	ReplaySeconds  float64 `json:"replay_seconds"`
	ReplayPerSec   float64 `json:"replay_events_per_second"`
	ReplayProblem  string  `json:"replay_problem,omitempty"`
	Clients        int     `json:"clients"`
	Behind         int     `json:"behind"`
	CaughtUp       int     `json:"caught_up"` // clients that received every missed event
	AllLiveSeconds float64 `json:"all_live_seconds"`
	ResumeProblem  string  `json:"resume_problem,omitempty"`
}

// RunResume stores cfg.Events events in one room and measures how fast one
// client subscribing with since (just before the room's first event)
// receives them all; then stores cfg.Behind events in another room and
// measures how long cfg.Clients clients, subscribing with since at once,
// take until each has received them all, that is until all are live.
func RunResume(ctx context.Context, cfg ResumeConfig) (*ResumeReport, error) {
	preloadDefaults(&cfg.Prefix, &cfg.Timeout, &cfg.Logger)
	nc, js, err := connectPreloader(cfg.NATSURL, "roomcast bench resume")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	subj := bus.Subjects{Prefix: cfg.Prefix}
	rep := &ResumeReport{Events: cfg.Events, Clients: cfg.Clients, Behind: cfg.Behind}

	cfg.Logger.Info("storing the events to replay", "room", replayRoom, "events", cfg.Events)
	first, last, err := preload(ctx, js, subj.Room(wire.MustRoom(replayRoom)), cfg.Events)
	if err != nil {
		return nil, err
	}
	if cfg.AdminURL != "" {
		// The keeper reads every stored event once, after it is stored;
		// a room's history is normally read long before anyone replays
		// it, so the replay is measured without that read competing.
		cfg.Logger.Info("waiting for the state keeper")
		wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		err := newAdmin(cfg.AdminURL, "").waitKeeper(wctx)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	cfg.Logger.Info("replaying", "events", cfg.Events)
	if err := replayOne(ctx, cfg, first-1, rep); err != nil {
		return nil, err
	}

	cfg.Logger.Info("storing the missed events", "room", resumeRoom, "events", cfg.Behind)
	if _, _, err := preload(ctx, js, subj.Room(wire.MustRoom(resumeRoom)), cfg.Behind); err != nil {
		return nil, err
	}
	cfg.Logger.Info("resuming at once", "clients", cfg.Clients)
	if err := resumeMany(ctx, cfg, last, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// preloadDefaults fills in what the scenarios that store events before
// they measure (resume, storm) default alike.
func preloadDefaults(prefix *string, timeout *time.Duration, log **slog.Logger) {
	if *prefix == "" {
		*prefix = bus.DefaultPrefix
	}
	if *timeout == 0 {
		*timeout = 2 * time.Minute
	}
	if *log == nil {
		*log = slog.New(slog.DiscardHandler)
	}
}

// connectPreloader connects to NATS for preload; the caller closes nc.
func connectPreloader(url, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(preloadBatch+8))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// preload publishes n bench events to subject and returns the sequences of
// the first and the last.
func preload(ctx context.Context, js jetstream.JetStream, subject string, n int) (first, last uint64, err error) {
	for done := 0; done < n; {
		batch := make([]jetstream.PubAckFuture, 0, min(preloadBatch, n-done))
		for range cap(batch) {
			done++
			f, err := js.PublishAsync(subject, tickPayload(time.Now().UnixNano(), uint64(done)))
			if err != nil {
				return 0, 0, fmt.Errorf("store events: %w", err)
			}
			batch = append(batch, f)
		}
		for _, f := range batch {
			select {
			case ack := <-f.Ok():
				if first == 0 {
					first = ack.Sequence
				}
				last = ack.Sequence
			case err := <-f.Err():
				return 0, 0, fmt.Errorf("store events: %w", err)
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
		}
	}
	return first, last, nil
}

// catchUp reads c until it has received want events of room, which must
// come in counter order (1, 2, ...), or until an error or the deadline.
// Events are parsed by hand in the layout the edge writes them, as the
// other scenarios' receivers do (handleText): what is measured is the
// edge, not encoding/json in the bench; anything else is decoded whole.
func catchUp(c *client.Conn, room string, want int, deadline time.Time) (got int, err error) {
	if err := c.NetConn().SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	for got < want {
		p, err := c.NextText() // valid until the next read: nothing is kept of it
		if err != nil {
			return got, err
		}
		_, data, ok := parseEventFrame(p, room)
		if !ok {
			var m wire.Message
			if err := json.Unmarshal(p, &m); err != nil {
				return got, fmt.Errorf("server sent invalid JSON: %w", err)
			}
			switch {
			case m.Type == wire.TypeError:
				return got, fmt.Errorf("subscribe refused: %s", m.Data)
			case m.Type != wire.TypeEvent || m.Room != room:
				continue // the subscribe response, pongs
			}
			data = m.Data
		}
		d, ok := parseTick(data)
		if !ok || d.N != uint64(got+1) {
			return got, fmt.Errorf("event %d of %s: counter %d, want %d", got+1, room, d.N, got+1)
		}
		got++
	}
	return got, nil
}

// dialEdge connects one resume client.
func dialEdge(ctx context.Context, url string) (*client.Conn, error) {
	return client.DialWith(ctx, ws.Dialer{Timeout: DefaultDialTimeout, NetDial: dialBuffered}, url, nil)
}

// replayOne measures one client replaying cfg.Events events from since.
func replayOne(ctx context.Context, cfg ResumeConfig, since uint64, rep *ResumeReport) error {
	c, err := dialEdge(ctx, cfg.URL)
	if err != nil {
		return err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { _ = c.NetConn().Close() })() // ends the read when interrupted
	start := time.Now()
	if err := c.Subscribe("replay", replayRoom, &since); err != nil {
		return fmt.Errorf("subscribe with since: %w", err)
	}
	got, err := catchUp(c, replayRoom, cfg.Events, start.Add(cfg.Timeout))
	took := time.Since(start)
	rep.Replayed, rep.ReplaySeconds = int64(got), took.Seconds()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		rep.ReplayProblem = fmt.Sprintf("%d of %d events replayed: %v", got, cfg.Events, err)
		return nil
	}
	rep.ReplayPerSec = float64(got) / took.Seconds()
	return nil
}

// resumeMany connects cfg.Clients clients, then has all of them subscribe
// with since at once, and measures the time until the last has received
// the cfg.Behind events it missed.
func resumeMany(ctx context.Context, cfg ResumeConfig, since uint64, rep *ResumeReport) error {
	conns := make([]*client.Conn, cfg.Clients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	var next atomic.Int64
	var dialers sync.WaitGroup
	var dialErr atomic.Pointer[error]
	for range min(DefaultDialConcurrency, cfg.Clients) {
		dialers.Go(func() {
			for i := int(next.Add(1) - 1); i < len(conns) && dialErr.Load() == nil; i = int(next.Add(1) - 1) {
				c, err := dialEdge(ctx, cfg.URL)
				if err != nil {
					dialErr.CompareAndSwap(nil, &err)
					return
				}
				conns[i] = c
			}
		})
	}
	dialers.Wait()
	if p := dialErr.Load(); p != nil {
		return fmt.Errorf("connect the resuming clients: %w", *p)
	}

	// Interrupted: closing the sockets ends the readers.
	defer context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.NetConn().Close()
		}
	})()
	start := time.Now()
	deadline := start.Add(cfg.Timeout)
	var readers sync.WaitGroup
	var caught atomic.Int64
	var lastDone atomic.Int64 // unix ns
	errs := make([]error, len(conns))
	for i, c := range conns {
		readers.Go(func() {
			if err := c.Subscribe("resume", resumeRoom, &since); err != nil {
				errs[i] = err
				return
			}
			if _, err := catchUp(c, resumeRoom, cfg.Behind, deadline); err != nil {
				errs[i] = err
				return
			}
			caught.Add(1)
			now := time.Now().UnixNano()
			for {
				prev := lastDone.Load()
				if now <= prev || lastDone.CompareAndSwap(prev, now) {
					break
				}
			}
		})
	}
	readers.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rep.CaughtUp = int(caught.Load())
	if end := lastDone.Load(); end > 0 {
		rep.AllLiveSeconds = time.Unix(0, end).Sub(start).Seconds()
	}
	if err := errors.Join(errs...); err != nil {
		rep.ResumeProblem = fmt.Sprintf("%d of %d clients caught up; first error: %v", rep.CaughtUp, cfg.Clients, firstErr(errs))
	}
	return nil
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// resumeFigures are the resume scenario's figures.
func resumeFigures(cfg *ScenarioConfig) []figureSpec {
	return []figureSpec{
		{fmt.Sprintf("replay to one client from a %d-event room", cfg.Events), "events/s", higher},
		{fmt.Sprintf("%d clients resuming %d events behind: until all live", cfg.ResumeClients, cfg.ResumeBehind), "s", lower},
	}
}

// resume runs the resume measurement on srv and records its figures.
func (sc *scenario) resume(ctx context.Context, srv *Servers, run int) error {
	cfg := sc.cfg
	rep, err := RunResume(ctx, ResumeConfig{
		URL: srv.WSURL, AdminURL: srv.AdminURL, NATSURL: srv.NATSURL, Events: cfg.Events, Clients: cfg.ResumeClients, Behind: cfg.ResumeBehind,
		Logger: cfg.Logger.With("target", srv.Target),
	})
	if err != nil {
		return err
	}
	figs := resumeFigures(cfg)
	sc.emit(Step{Scenario: cfg.Scenario, Target: srv.Target, Run: run, Step: "replay", Connections: 1, Rooms: 1,
		Expected: int64(cfg.Events), Delivered: rep.Replayed, Lost: int64(cfg.Events) - rep.Replayed,
		EventsPerSec: rep.ReplayPerSec, Seconds: rep.ReplaySeconds, Passed: rep.ReplayProblem == "", Problem: rep.ReplayProblem})
	sc.figs.add(figs[0], srv.Target, rep.ReplayPerSec, rep.ReplayProblem == "")
	expected := int64(cfg.ResumeClients) * int64(cfg.ResumeBehind)
	sc.emit(Step{Scenario: cfg.Scenario, Target: srv.Target, Run: run, Step: "mass-resume", Connections: cfg.ResumeClients, Rooms: 1,
		Expected: expected, Delivered: int64(rep.CaughtUp) * int64(cfg.ResumeBehind), Lost: int64(cfg.ResumeClients-rep.CaughtUp) * int64(cfg.ResumeBehind),
		Seconds: rep.AllLiveSeconds, Passed: rep.ResumeProblem == "", Problem: rep.ResumeProblem})
	sc.figs.add(figs[1], srv.Target, rep.AllLiveSeconds, rep.ResumeProblem == "")
	return nil
}
