package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// scaleOutFigures are the scale-out scenario's figures.
func scaleOutFigures(cfg *ScenarioConfig) []figureSpec {
	pct := math.Round(cfg.Tolerance * 100)
	return []figureSpec{
		{fmt.Sprintf("%d connections, 1 to %d edges: until each edge holds its share ±%g%%", cfg.Conns, DefaultScaleOutEdges, pct), "s", lower},
		{"until the last reconnect", "s", lower},
		{"reconnects/s at the peak (1 s window)", "reconnects/s", lower},
		{"reconnects/s on average, until the last", "reconnects/s", lower},
	}
}

// scaleOut runs the scale-out measurement on srv and records its figures.
func (sc *scenario) scaleOut(ctx context.Context, srv *Servers, run int) error {
	cfg := sc.cfg
	if srv.AddEdge == nil {
		return errors.New("scale-out: the servers cannot start more edges")
	}
	rep, err := RunScaleOut(ctx, ScaleOutConfig{
		URL: srv.WSURL, NATSURL: srv.NATSURL, AddEdge: srv.AddEdge,
		Conns: cfg.Conns, Rooms: cfg.Rooms, Rate: cfg.Rate, Tolerance: cfg.Tolerance,
		Logger: cfg.Logger.With("target", srv.Target),
	})
	if err != nil {
		return err
	}
	cfg.Logger.Info("scale-out measured", "balanced_seconds", rep.BalancedSeconds, "settled_seconds", rep.SettledSeconds,
		"reconnects", rep.Reconnects, "peak_per_second", rep.ReconnectsPeak, "average_per_second", rep.ReconnectsAverage,
		"closes", rep.Closes, "final", rep.Final, "dial_failures", rep.DialFailures, "refused", rep.Refused,
		"published", rep.Published, "lost", rep.Lost, "repeated", rep.Repeated, "unrecovered", rep.Unrecovered)
	ok := rep.Problem == ""
	sc.emit(Step{Scenario: cfg.Scenario, Target: srv.Target, Run: run, Step: cfg.Scenario, Rate: cfg.Rate,
		Connections: cfg.Conns, Rooms: cfg.Rooms, Expected: rep.Expected, Delivered: rep.Delivered, Lost: rep.Lost,
		Seconds: rep.BalancedSeconds, ReconnectsPeak: rep.ReconnectsPeak, ReconnectsAverage: rep.ReconnectsAverage,
		Passed: ok, Problem: rep.Problem})
	figs := scaleOutFigures(cfg)
	sc.figs.add(figs[0], srv.Target, rep.BalancedSeconds, ok)
	sc.figs.add(figs[1], srv.Target, rep.SettledSeconds, ok)
	sc.figs.add(figs[2], srv.Target, rep.ReconnectsPeak, ok)
	sc.figs.add(figs[3], srv.Target, rep.ReconnectsAverage, ok)
	return nil
}
