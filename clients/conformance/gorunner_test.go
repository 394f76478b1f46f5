package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	roomcast "github.com/roomcast/roomcast/clients/go"
)

// runGo is the Go runner (README.md, "The runner contract"): it follows
// cfg.Rooms with clients/go and emits a record for everything the library
// hands over, ready first. It returns nil when ctx ends or after the
// library stopped (the stopped record says why); an error only for a
// failure of its own.
func runGo(ctx context.Context, cfg runnerConfig, emit func(record)) error {
	opts := roomcast.Options{URLs: cfg.URLs, Token: cfg.Token,
		BackoffMin: time.Duration(cfg.BackoffMinMS) * time.Millisecond,
		BackoffMax: time.Duration(cfg.BackoffMaxMS) * time.Millisecond}
	if cfg.RefreshURL != "" {
		opts.Refresh = func(ctx context.Context) (string, error) { return fetchToken(ctx, cfg.RefreshURL) }
	}
	c, err := roomcast.Connect(ctx, opts)
	if err != nil {
		return fmt.Errorf("go runner: %w", err)
	}
	defer c.Close()
	done := make([]bool, len(cfg.Rooms)) // entries subscribed: each once
	if err := subscribeAfter(c, cfg.Rooms, done, nil); err != nil {
		return err
	}
	emit(record{Kind: "ready"})
	for {
		m, err := c.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, roomcast.ErrClosed) {
			return nil
		}
		var stop *roomcast.StopError
		if errors.As(err, &stop) {
			emit(record{Kind: "stopped", Code: stop.Code, Error: stop.ErrorCode, Text: stop.Error()})
			return nil
		}
		if err != nil {
			return fmt.Errorf("go runner: %w", err)
		}
		n, pause := emitMessage(m, emit)
		if n >= 0 {
			if err := subscribeAfter(c, cfg.Rooms, done, &n); err != nil {
				return err
			}
		}
		if pause > 0 {
			select { // the application is slow: it takes nothing meanwhile
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
		}
	}
}

// subscribeAfter subscribes the rooms whose after_n is n (nil: those
// without one, at the start), unless done says they were.
func subscribeAfter(c *roomcast.Client, rooms []roomConfig, done []bool, n *int) error {
	for i, r := range rooms {
		if done[i] || (r.AfterN == nil) != (n == nil) || (n != nil && *r.AfterN != *n) {
			continue
		}
		done[i] = true
		o := roomcast.SubscribeOptions{History: r.History, State: r.State, Conflate: r.Conflate, Since: r.Since, Epoch: r.Epoch}
		if err := c.Subscribe(r.Room, o); err != nil {
			return fmt.Errorf("go runner: %w", err)
		}
	}
	return nil
}

// emitMessage emits m's record, and returns an event's data.n (-1 for
// none, and for other messages) and how long the application pauses
// after it (an event's data.pause_ms).
func emitMessage(m roomcast.Message, emit func(record)) (int, time.Duration) {
	switch m := m.(type) {
	case *roomcast.Event:
		var d struct {
			N       *int `json:"n"`
			PauseMS int  `json:"pause_ms"`
		}
		_ = json.Unmarshal(m.Data, &d) // data that is not an object has no n
		n := -1
		if d.N != nil {
			n = *d.N
		}
		emit(record{Kind: "event", Room: m.Room, Seq: m.Seq, Event: m.Name, N: n, Conflated: m.Conflated})
		return n, time.Duration(d.PauseMS) * time.Millisecond
	case *roomcast.Subscribed:
		state := -1
		if m.State != nil {
			state = len(m.State)
		}
		emit(record{Kind: "subscribed", Room: m.Room, Seq: m.Seq, Epoch: m.Epoch, Replayed: m.Replayed,
			Recovered: m.Recovered, Resumed: m.Resumed, State: state})
	case *roomcast.Notice:
		emit(record{Kind: "notice", Notice: string(m.Kind), Code: m.Code, Error: m.Error, Room: m.Room, Text: m.Text})
	}
	return -1, 0
}

// fetchToken GETs a new token from url: the body, one token; any answer
// but 200 is a failed refresh.
func fetchToken(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("refresh: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("refresh: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("refresh: %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}
