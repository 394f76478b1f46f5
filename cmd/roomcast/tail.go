package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
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
	dialer, err := wsDialer(*caFile, *serverName)
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
	t := &tailer{env: env, urls: urls, json: *asJSON, state: *state, last: make(map[string]uint64), epoch: make(map[string]string), replaying: make(map[string]bool), token: token, compress: *compress,
		colour: colourFor(env.stdout, env.getenv), dialer: dialer}
	for _, a := range fs.Args() {
		r, err := wire.ParseRoom(a)
		if err != nil {
			return usageError{err}
		}
		t.rooms = append(t.rooms, r.String())
	}
	if *since != "" {
		s, err := strconv.ParseUint(*since, 10, 64)
		if err != nil || len(t.rooms) != 1 {
			return usagef("--since takes a non-negative integer and one room")
		}
		t.last[t.rooms[0]] = s
	}
	if *epoch != "" {
		if *since == "" {
			return usagef("--epoch needs --since: it names the stream that seq is in")
		}
		if err := wire.CheckEpoch(*epoch); err != nil {
			return usagef("--epoch: %v", err)
		}
		t.epoch[t.rooms[0]] = *epoch
	}
	return t.run(ctx)
}

// tailer prints rooms' events and, when the connection drops, reconnects
// (to the next URL) and resumes each room after the last seq it printed.
type tailer struct {
	env    *environment
	urls   []string
	rooms  []string
	json   bool
	colour bool // states coloured: standard output is a terminal
	token  string
	// state subscribes with state: each room's state is printed before
	// its events, and again when a resume comes back with a fresh one.
	state bool
	// compress offers permessage-deflate.
	compress bool
	dialer   ws.Dialer         // with the TLS settings of --tls-ca and --tls-server-name
	last     map[string]uint64 // room → last seq printed; absent: live only
	epoch    map[string]string // room → the epoch of the stream its last seq is in
	// replaying holds the rooms whose subscribe response has not come: the
	// events before it are the server's answer to since, which starts over
	// when the stream was recreated.
	replaying map[string]bool
}

func (t *tailer) run(ctx context.Context) error {
	backoff := time.Duration(0)
	for attempt := 0; ; attempt++ {
		url := t.urls[attempt%len(t.urls)]
		err := t.session(ctx, url)
		if ctx.Err() != nil {
			return nil
		}
		if final(err) {
			return err // reconnecting will not help
		}
		if client.ReconnectAtOnce(err) {
			// A node rebalancing the cluster: it is healthy, and the
			// resume loses nothing, so there is nothing to wait for.
			backoff = 0
			fmt.Fprintf(t.env.stderr, "tail: %v; reconnecting now\n", err)
			continue
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		fmt.Fprintf(t.env.stderr, "tail: %v; reconnecting in %s\n", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// session runs one connection until it fails or ctx ends.
func (t *tailer) session(ctx context.Context, url string) error {
	var h http.Header
	if t.token != "" {
		h = http.Header{"Authorization": {"Bearer " + t.token}}
	}
	dial := client.DialWith
	if t.compress {
		dial = client.DialCompressed
	}
	c, err := dial(ctx, t.dialer, url, h)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()
	for i, r := range t.rooms {
		data := client.SubscribeData{Channel: r, State: t.state}
		if s, ok := t.last[r]; ok {
			t.replaying[r] = true
			data.Since, data.Epoch = &s, t.epoch[r]
		}
		if err := c.Request(wire.EventSubscribe, "sub_"+strconv.Itoa(i), data); err != nil {
			return err
		}
	}
	for {
		m, err := c.Read(time.Time{})
		if err != nil {
			return err
		}
		if err := t.handle(m); err != nil {
			return err
		}
	}
}

func (t *tailer) handle(m wire.Message) error {
	switch m.Type {
	case wire.TypeEvent:
		if m.Room != "" {
			if last, ok := t.last[m.Room]; ok && m.Seq <= last && !t.replaying[m.Room] {
				return nil // already printed before a reconnect
			}
			t.last[m.Room] = m.Seq
		}
		return t.print(m)
	case wire.TypeResponse:
		var r wire.StateResult
		if m.Event == wire.EventSubscribe && json.Unmarshal(m.Data, &r) == nil {
			if _, ok := t.last[r.Channel]; !ok || t.epoch[r.Channel] != r.Epoch || r.State != nil {
				// Live only until now, a position in another stream, or
				// a state as of seq: what follows the response is after it.
				t.last[r.Channel] = r.Seq
			}
			t.epoch[r.Channel] = r.Epoch
			delete(t.replaying, r.Channel)
			note := ""
			if !r.Recovered {
				note = " (some events were already removed by retention, or the stream was recreated)"
			}
			if r.State != nil {
				note += fmt.Sprintf(", with its state of %d keys", len(r.State))
			}
			fmt.Fprintf(t.env.stderr, "tail: subscribed to %s at seq %d (epoch %s), %d replayed%s\n", r.Channel, r.Seq, r.Epoch, r.Replayed, note)
			if r.State != nil {
				return t.printState(r)
			}
		}
	case wire.TypeError:
		var e wire.ErrorData
		_ = json.Unmarshal(m.Data, &e)
		err := fmt.Errorf("%s %s: %s: %s", m.Event, m.ID, e.Code, e.Message)
		if e.Code == wire.CodeUnauthenticated && t.token == "" {
			return refusal{errNeedsToken}
		}
		switch e.Code {
		case wire.CodeUnauthenticated, wire.CodeForbidden, wire.CodeInvalidRoom, wire.CodeBadRequest, wire.CodeTooManySubscriptions:
			return refusal{err} // the same request would be refused again
		}
		return err
	}
	return nil
}

// errNeedsToken is tail's answer to an edge that asks for a token it was
// not given: how to give one, not the protocol's wording.
var errNeedsToken = errors.New("the edge requires a token: pass one with --token-file FILE, ROOMCAST_TOKEN or --token JWT (roomcast token mints one for development)")

// refusal is an error the server will give again on every reconnection.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// final reports whether err ends tail instead of a reconnection: the
// server refused the token (1008), let it expire (4001), refused a frame
// as too big (1009), closed it for its rate (4029), or refused a request
// for good.
func final(err error) bool {
	var ce *client.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case wire.ClosePolicy, wire.CloseTooBig, wire.CloseTokenExpired, wire.CloseRateLimited:
			return true
		}
	}
	// A certificate this client does not trust will not be trusted on the
	// next attempt either.
	var untrusted *tls.CertificateVerificationError
	return errors.As(err, new(refusal)) || errors.As(err, &untrusted)
}

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
func (t *tailer) printState(r wire.StateResult) error {
	w := t.env.stdout
	if t.json {
		b, err := json.Marshal(stateLine{Type: "state", Room: r.Channel, Seq: r.Seq, Epoch: r.Epoch, State: r.State})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	keys := "keys"
	if len(r.State) == 1 {
		keys = "key"
	}
	if _, err := fmt.Fprintf(w, "= state of %s as of seq %d (%d %s)\n", r.Channel, r.Seq, len(r.State), keys); err != nil {
		return err
	}
	for _, m := range r.State {
		if _, err := io.WriteString(w, "= "); err != nil {
			return err
		}
		if err := printHuman(w, m, t.colour); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "= end of the state of %s: its events after seq %d follow\n", r.Channel, r.Seq)
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
	f, ok := w.(*os.File)
	if !ok || getenv("NO_COLOR") != "" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// wsDialer is the dialer of a client command: a 10 s handshake, and for
// wss:// the CA bundle in caFile (empty: the system's) and serverName to
// verify (empty: the URL's host).
func wsDialer(caFile, serverName string) (ws.Dialer, error) {
	d := ws.Dialer{Timeout: 10 * time.Second}
	if caFile == "" && serverName == "" {
		return d, nil
	}
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return d, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return d, fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
		}
	}
	d.TLSConfig = cfg
	return d, nil
}
