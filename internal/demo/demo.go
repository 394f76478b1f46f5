// Package demo simulates worker pools and workflows for `roomcast demo`: it
// publishes, at a chosen rate, the events a real pool system would (workers
// switching between idle, busy and error, tasks assigned and then
// completed or failed, scale-ups and scale-downs, pool status, workflows
// going through their stages to an outcome that follows them), so a
// newcomer sees the dashboard and `tail` come alive without a pool system.
package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/events"
)

// Config is what a simulation does. Zero fields take the defaults.
type Config struct {
	Pools     int     // pools p1..pN, each a room pool:pN
	Workers   int     // workers per pool at the start
	Workflows int     // workflows w1..wN, each a room workflow:wN, run after run
	Rate      float64 // events per second over everything
	Events    int     // stop after this many events; 0: until ctx ends
	Seed      uint64  // of the random choices; 0 takes the time
	Now       func() time.Time
}

// Defaults of Config.
const (
	DefaultPools     = 2
	DefaultWorkers   = 12
	DefaultWorkflows = 3
	DefaultRate      = 20
	maxRate          = 10_000
	maxWorkers       = 1_000
)

func (c Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.Pools, DefaultPools)
	set(&c.Workers, DefaultWorkers)
	set(&c.Workflows, DefaultWorkflows)
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every bad setting at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Pools < 0 || c.Pools > 100 {
		bad("pools: want 1 to 100, got %d", c.Pools)
	}
	if c.Workers < 0 || c.Workers > maxWorkers {
		bad("workers: want 1 to %d per pool, got %d", maxWorkers, c.Workers)
	}
	if c.Workflows < 0 || c.Workflows > 100 {
		bad("workflows: want 0 to 100, got %d", c.Workflows)
	}
	if c.Rate < 0 || c.Rate > maxRate || c.Rate != c.Rate {
		bad("rate: want more than 0 and at most %d events/s, got %v", maxRate, c.Rate)
	}
	if c.Events < 0 {
		bad("events: want 0 (no end) or more, got %d", c.Events)
	}
	return errors.Join(errs...)
}

// Stats counts what a simulation published, by event name, and the
// events it gave up (events.ErrGaveUp) and went on without.
type Stats struct {
	mu     sync.Mutex
	counts map[string]int
	gaveUp int
}

func (s *Stats) add(event string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = make(map[string]int)
	}
	s.counts[event]++
}

func (s *Stats) giveUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gaveUp++
}

// GaveUp is the number of events given up after their retries.
func (s *Stats) GaveUp() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gaveUp
}

// Counts returns a copy of the counts.
func (s *Stats) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Total is the number of events published.
func (s *Stats) Total() int {
	n := 0
	for _, v := range s.Counts() {
		n += v
	}
	return n
}

// Run publishes the simulation through p until ctx ends, cfg.Events are
// published or given up, or a publish fails for good; stats counts what
// was stored. A publish p's store gave up retrying (events.ErrGaveUp, as
// events.Retrying returns through a long outage) is counted and the
// simulation goes on: one lost event must not end a demo. Its end by ctx
// is not an error, even with an event on its way (that one may or may not
// be stored, and is not counted).
func Run(ctx context.Context, cfg Config, p *events.Publisher, stats *Stats) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	w := newWorld(cfg)
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	for n := 0; cfg.Events == 0 || n < cfg.Events; n++ {
		ev := w.next()
		switch err := ev.publish(ctx, p); {
		case err == nil:
			stats.add(ev.name)
		case ctx.Err() != nil:
			return nil // stopped while an event was on its way: not a failure
		case errors.Is(err, events.ErrGaveUp):
			stats.giveUp()
		default:
			return fmt.Errorf("demo: %w", err)
		}
		if cfg.Events != 0 && n+1 == cfg.Events {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return nil
}
