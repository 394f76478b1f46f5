package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	roomcast "github.com/roomcast/roomcast/clients/go"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/wire"
)

func runTail(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "tail", "ROOM...")
	var urls config.List
	fs.Var(&urls, "url", "edge URL; repeat for failover (default ws://127.0.0.1:8690)")
	asJSON := fs.Bool("json", false, "print each event as one raw JSON object per line")
	since := fs.String("since", "", "resume after this seq (one room only)")
	epoch := fs.String("epoch", "", "with --since: the epoch of the stream that seq is in, from the subscribe line tail printed")
	state := fs.Bool("state", false, "print each room's keyed state first (every key's latest event, also those older than the history), then its events; again after a reconnection that lost events")
	var tok tailToken
	fs.StringVar(&tok.value, "token", "", "JWT for the edge (or ROOMCAST_TOKEN); other users see it in ps: prefer --token-file")
	fs.StringVar(&tok.file, "token-file", "", "file holding the JWT for the edge, read at start, surrounding whitespace trimmed (or ROOMCAST_TOKEN_FILE); not with --token")
	compress := fs.Bool("compression", false, "offer permessage-deflate (an edge started with --compression accepts it)")
	caFile := fs.String("tls-ca", "", "PEM CA bundle to trust for wss:// URLs (default: the system's)")
	serverName := fs.String("tls-server-name", "", "name to verify the edge's certificate against, when the URL's host is another (a port-forward)")
	// The token's variables are resolved apart: see tailToken.
	flagEnv := *env
	flagEnv.getenv = withoutTokenEnv(env.getenv)
	if err := parseFlags(fs, &flagEnv, args, nil); err != nil {
		return err
	}
	token, err := tok.resolve(env.getenv)
	if err != nil {
		return err
	}
	tlsCfg, err := clientTLS(*caFile, *serverName)
	if err != nil {
		return usageError{err}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usagef("name at least one room")
	}
	if len(urls) == 0 {
		urls = config.List{"ws://127.0.0.1:8690"}
	}
	t := &tailer{env: env, json: *asJSON, colour: colourFor(env.stdout, env.getenv), token: token,
		opts: roomcast.Options{URLs: urls, Token: token, TLSConfig: tlsCfg, Compression: *compress}}
	for _, a := range fs.Args() {
		r, err := wire.ParseRoom(a)
		if err != nil {
			return usageError{err}
		}
		t.rooms = append(t.rooms, r.String())
	}
	sub := roomcast.SubscribeOptions{State: *state}
	if *since != "" {
		s, err := strconv.ParseUint(*since, 10, 64)
		if err != nil || len(t.rooms) != 1 {
			return usagef("--since takes a non-negative integer and one room")
		}
		sub.Since = &s
	}
	if *epoch != "" {
		if *since == "" {
			return usagef("--epoch needs --since: it names the stream that seq is in")
		}
		if err := wire.CheckEpoch(*epoch); err != nil {
			return usagef("--epoch: %v", err)
		}
		sub.Epoch = *epoch
	}
	return t.run(ctx, sub)
}

// tailer prints rooms' events as the Go client (clients/go) hands them
// over: it reconnects (to the next URL) and resumes each room after the
// last seq printed.
type tailer struct {
	env    *environment
	opts   roomcast.Options
	rooms  []string
	json   bool
	colour bool   // states coloured: standard output is a terminal
	token  string // "" when tail was given none
}

func (t *tailer) run(ctx context.Context, sub roomcast.SubscribeOptions) error {
	c, err := roomcast.Connect(ctx, t.opts)
	if err != nil {
		return usageError{err}
	}
	defer c.Close()
	for _, r := range t.rooms {
		if err := c.Subscribe(r, sub); err != nil {
			return err
		}
	}
	for {
		m, err := c.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, roomcast.ErrClosed) {
			return nil
		}
		if err != nil {
			return t.stopped(err)
		}
		if err := t.handle(m); err != nil {
			return err
		}
	}
}

// stopped is tail's error for the client's stop.
func (t *tailer) stopped(err error) error {
	var se *roomcast.StopError
	if errors.As(err, &se) && se.ErrorCode == wire.CodeUnauthenticated && t.token == "" {
		return errNeedsToken
	}
	return err
}

func (t *tailer) handle(m roomcast.Message) error {
	switch m := m.(type) {
	case *roomcast.Event:
		return t.print(eventMessage(m))
	case *roomcast.Subscribed:
		return t.subscribed(m)
	case *roomcast.Notice:
		return t.notice(m)
	}
	return nil
}

// subscribed says where a room's subscription starts, and prints its
// state when it came with one.
func (t *tailer) subscribed(s *roomcast.Subscribed) error {
	note := ""
	if !s.Recovered {
		note = " (some events were already removed by retention, or the stream was recreated)"
	}
	if s.State != nil {
		note += fmt.Sprintf(", with its state of %d keys", len(s.State))
	}
	fmt.Fprintf(t.env.stderr, "tail: subscribed to %s at seq %d (epoch %s), %d replayed%s\n", s.Room, s.Seq, s.Epoch, s.Replayed, note)
	if s.State == nil {
		return nil
	}
	state := make([]wire.Message, len(s.State))
	for i := range s.State {
		state[i] = eventMessage(&s.State[i])
	}
	return t.printState(s.Room, s.Seq, s.Epoch, state)
}

// notice tells what the client told: on standard error, but a draining
// node's notice, printed as the event it came as. A request the node
// would refuse again ends tail.
func (t *tailer) notice(n *roomcast.Notice) error {
	switch n.Kind {
	case roomcast.Connected:
		return nil
	case roomcast.Draining:
		return t.print(wire.Message{Type: wire.TypeEvent, Event: wire.EventDraining})
	case roomcast.Disconnected:
		if n.Retry < 0 {
			return nil // the client stops: its error says why
		}
	case roomcast.RequestError:
		switch n.Error {
		case wire.CodeForbidden, wire.CodeInvalidRoom, wire.CodeBadRequest, wire.CodeTooManySubscriptions:
			return errors.New(n.Text) // the same request would be refused again
		}
	}
	fmt.Fprintf(t.env.stderr, "tail: %s\n", n.Text)
	return nil
}

// eventMessage is e as the node sent it, for printing.
func eventMessage(e *roomcast.Event) wire.Message {
	return wire.Message{Type: wire.TypeEvent, Event: e.Name, Room: e.Room, Seq: e.Seq, TS: e.TS,
		Key: e.Key, KeyDeleted: e.KeyDeleted, Conflated: e.Conflated, Data: e.Data}
}

// errNeedsToken is tail's answer to an edge that asks for a token it was
// not given: how to give one, not the protocol's wording.
var errNeedsToken = errors.New("the edge requires a token: pass one with --token-file FILE, ROOMCAST_TOKEN or --token JWT (roomcast token mints one for development)")

// stateLine is how --json prints a room's state: one line, told apart
// from events by its type.
type stateLine struct {
	Type  string         `json:"type"` // "state"
	Room  string         `json:"room"`
	Seq   uint64         `json:"seq"`
	Epoch string         `json:"epoch"`
	State []wire.Message `json:"state"`
}

// printState prints a room's state, which replaces the picture of the
// room that what tail printed before gave: its entries in seq order, each
// as an event, between a line that names the room and the position the
// state is as of and one that says its events follow; every line starts
// with "= " so a reader (or grep -v) tells the state from the events.
// With --json it is one stateLine.
func (t *tailer) printState(room string, seq uint64, epoch string, state []wire.Message) error {
	w := t.env.stdout
	if t.json {
		b, err := json.Marshal(stateLine{Type: "state", Room: room, Seq: seq, Epoch: epoch, State: state})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	keys := "keys"
	if len(state) == 1 {
		keys = "key"
	}
	if _, err := fmt.Fprintf(w, "= state of %s as of seq %d (%d %s)\n", room, seq, len(state), keys); err != nil {
		return err
	}
	for _, m := range state {
		if _, err := io.WriteString(w, "= "); err != nil {
			return err
		}
		if err := printHuman(w, m, t.colour); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "= end of the state of %s: its events after seq %d follow\n", room, seq)
	return err
}

func (t *tailer) print(m wire.Message) error {
	if t.json {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(t.env.stdout, "%s\n", b)
		return err
	}
	return printHuman(t.env.stdout, m, t.colour)
}

// printHuman writes one event as a person reads it: time, room, seq, event
// and its main fields (see events.Summary):
// `10:00:00.123  pool:p1  #1042  worker.status_changed  w1            busy`.
func printHuman(w io.Writer, m wire.Message, colour bool) error {
	ts := m.TS
	if t, err := time.Parse(time.RFC3339Nano, m.TS); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	if m.Room == "" { // server notices such as server.draining
		_, err := fmt.Fprintf(w, "%-12s  %s\n", ts, m.Event)
		return err
	}
	_, err := fmt.Fprintf(w, "%-12s  %s  #%d  %-24s  %s%s\n", ts, m.Room, m.Seq, m.Event, events.Summary(m.Event, m.Data, colour), keyNotes(m))
	return err
}

// keyNotes is what a line adds for an event's key fields: that it ends
// its key (a worker that left), and how many superseded events of the
// room a conflating connection skipped before it.
func keyNotes(m wire.Message) string {
	var s string
	if m.KeyDeleted {
		s += "  [ends " + m.Key + "]"
	}
	if m.Conflated > 0 {
		s += fmt.Sprintf("  [%d superseded skipped before]", m.Conflated)
	}
	return s
}

// colourFor reports whether output to w should be coloured: w is a
// terminal and NO_COLOR (no-color.org) is not set.
func colourFor(w io.Writer, getenv func(string) string) bool {
	return getenv("NO_COLOR") == "" && isTerminal(w)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// clientTLS is the TLS configuration of a client command's --tls-ca and
// --tls-server-name: nil (the system's roots, the URL's host) when
// neither is given.
func clientTLS(caFile, serverName string) (*tls.Config, error) {
	if caFile == "" && serverName == "" {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
		}
	}
	return cfg, nil
}
