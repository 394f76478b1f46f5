package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	var kf keyFlags
	fs.StringVar(&kf.key, "key", "", "the event's key, set or overriding the pool vocabulary's (default: the vocabulary's key, if any)")
	fs.BoolVar(&kf.deleted, "key-deleted", false, "the event ends its key (needs one: the vocabulary's or --key)")
	fs.BoolVar(&kf.none, "no-key", false, "publish the event unkeyed, whatever the vocabulary says")
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
	kf.given = flagGiven(fs, "key")
	opts, err := kf.options(fs.Arg(1), data)
	if err != nil {
		return usageError{err}
	}
	opts.MsgID = *msgID

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	b, closeBus, err := publishingBus(*natsURL, *prefix, "roomcast publish", *timeout, auth)
	if err != nil {
		return err
	}
	defer closeBus()
	seq, err := events.NewPublisher(b).PublishAs(ctx, room, fs.Arg(1), data, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, seq)
	return nil
}

// keyFlags are publish's say over the event's key.
type keyFlags struct {
	key     string // --key
	given   bool   // --key was given (even empty)
	deleted bool   // --key-deleted
	none    bool   // --no-key
}

// options is the key the flags give event with data: --no-key none,
// --key its own, else the pool vocabulary's (events.KeyOf); --key-deleted
// marks whichever it is as ended.
func (kf keyFlags) options(event string, data json.RawMessage) (wire.PublishOptions, error) {
	var o wire.PublishOptions
	switch {
	case kf.none && (kf.given || kf.deleted):
		return o, errors.New("--no-key publishes the event unkeyed: it goes with neither --key nor --key-deleted")
	case kf.none:
		return o, nil
	case kf.given:
		if err := wire.CheckKey(kf.key); err != nil {
			return o, fmt.Errorf("--key %q: %w", kf.key, err)
		}
		o.Key = kf.key
	default:
		key, deleted, err := events.KeyOf(event, data)
		if err != nil {
			return o, fmt.Errorf("%w (name the key with --key, or publish unkeyed with --no-key)", err)
		}
		o.Key, o.KeyDeleted = key, deleted
	}
	if kf.deleted {
		if o.Key == "" {
			return o, fmt.Errorf("--key-deleted ends the event's key, but %s has none by the pool vocabulary: name it with --key", event)
		}
		o.KeyDeleted = true
	}
	return o, nil
}

// flagGiven reports whether flag name was set, on the command line or by
// its variable.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
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
