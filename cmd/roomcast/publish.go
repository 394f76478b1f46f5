package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

func runPublish(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "publish", "ROOM EVENT [JSON|-]")
	natsURL := fs.String("nats", nats.DefaultURL, "NATS URLs, comma-separated")
	prefix := fs.String("subject-prefix", bus.DefaultPrefix, "NATS subject prefix")
	msgID := fs.String("msg-id", "", "Nats-Msg-Id for idempotent retries (default: a fresh unique id)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for NATS to store the event")
	auth := config.RegisterNATSAuth(fs)
	if err := parseFlags(fs, env, args, nil); err != nil {
		return err
	}
	if err := auth.Load(env.getenv); err != nil {
		return usageError{err}
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		fs.Usage()
		return usagef("want ROOM EVENT [JSON|-], got %d arguments", fs.NArg())
	}
	room, err := wire.ParseRoom(fs.Arg(0))
	if err != nil {
		return usageError{err}
	}
	data, err := readData(env, fs.Args()[2:])
	if err != nil {
		return usageError{err}
	}
	if _, err := events.Payload(room, fs.Arg(1), data); err != nil {
		return usageError{err}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	b, closeBus, err := publishingBus(*natsURL, *prefix, "roomcast publish", *timeout, auth)
	if err != nil {
		return err
	}
	defer closeBus()
	seq, err := events.NewPublisher(b).Publish(ctx, room, fs.Arg(1), data, *msgID)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, seq)
	return nil
}

// readData reads the event's data: the argument, or standard input with
// "-" or when input is piped; none is no data.
func readData(env *environment, rest []string) (json.RawMessage, error) {
	switch {
	case len(rest) == 1 && rest[0] != "-":
		return json.RawMessage(rest[0]), nil
	case len(rest) == 1 || stdinPiped(env.stdin):
		b, err := io.ReadAll(io.LimitReader(env.stdin, bus.DefaultMaxPayload+1))
		if err != nil {
			return nil, fmt.Errorf("read data from standard input: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

// stdinPiped reports whether standard input is a pipe or file rather than a
// terminal (or nothing).
func stdinPiped(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return r != nil
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice == 0
}

// publishingBus connects to NATS for a command that publishes (publish,
// demo) and returns the bus and the function that closes both.
func publishingBus(natsURL, prefix, name string, timeout time.Duration, auth *config.NATSAuth, extra ...nats.Option) (*bus.Bus, func(), error) {
	security, err := auth.Options()
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(natsURL, append(append(security, nats.Name(name), nats.Timeout(timeout)), extra...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS %s: %w", natsURL, err)
	}
	b, err := bus.New(nc, bus.Options{Prefix: prefix, Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewUnregistered()})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return b, func() {
		b.Close()
		nc.Close()
	}, nil
}
