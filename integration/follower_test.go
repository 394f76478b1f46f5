package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// follower is a monitor following rooms the way docs/protocol.md tells a client
// to: it subscribes live at first, and whenever its connection ends (an
// edge killed, drained, a subscribe refused) it connects to the next edge,
// round robin, after a pause (at once after a 4012, as a node rebalancing
// the cluster asks), and subscribes to each room again with since, the
// last seq it saw there. After a 4010 (the stream was recreated) it
// subscribes again the same way. It records every event it receives. A
// follower fromStart subscribes with since 0 at first: it wants each
// room's whole history.
type follower struct {
	name      string
	rooms     []string
	c         *cluster
	fromStart bool
	next      int // the edge it connects to next; owned by run
	stop      context.CancelFunc
	done      chan struct{}

	mu       sync.Mutex
	logs     map[string]*roomLog // guarded by mu
	onEdge   int                 // guarded by mu: the edge it is connected to, -1 between connections
	conn     *client.Conn        // guarded by mu: the connection, nil between connections
	conns    int                 // guarded by mu: connections made
	resumes  int                 // guarded by mu: subscribes with since
	replayed int                 // guarded by mu: events the resumes replayed
	resets   int                 // guarded by mu: 4010 closes
	// rebalanced counts 4012 closes (guarded by mu): each answered by a
	// connection to the next edge at once, without the pause.
	rebalanced int
	closes     map[string]int // guarded by mu: how connections ended
	refused    map[string]int // guarded by mu: subscribe errors by code
}

// roomLog is what a follower saw of one room.
type roomLog struct {
	subscribed  bool     // on the current connection
	started     bool     // the first subscribe was answered
	start       uint64   // its seq: the follower's start in the room
	seqs        []uint64 // every event received, in order of arrival
	unrecovered int      // resumes answered recovered: false outside a reset

	// After a 4010: resetAt is where in seqs it came; epochStart is the
	// seq of the answer to the subscribe that followed, and epochFrom
	// where in seqs the events after that answer begin.
	resetPending bool
	resetAt      int
	epochs       int
	epochStart   uint64
	epochFrom    int
}

// startFollower starts a follower of rooms, first connecting to edge first.
func startFollower(ctx context.Context, c *cluster, name string, rooms []string, first int, fromStart bool) *follower {
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{name: name, rooms: rooms, c: c, fromStart: fromStart, next: first, stop: cancel, done: make(chan struct{}),
		logs: map[string]*roomLog{}, onEdge: -1, closes: map[string]int{}, refused: map[string]int{}}
	for _, r := range rooms {
		f.logs[r] = &roomLog{}
	}
	go f.run(ctx)
	return f
}

// Stop ends the follower and waits for it.
func (f *follower) Stop() {
	f.stop()
	<-f.done
}

func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	for ctx.Err() == nil {
		edge := f.next
		f.next = (f.next + 1) % 3
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := client.Dial(dctx, f.c.edgeURL(edge), nil)
		cancel()
		pause := followerPause
		if err == nil {
			pause = pauseAfter(f.session(ctx, conn, edge))
		}
		if pause == 0 {
			continue
		}
		select { // a moment before the next edge, as clients back off
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// followerPause is how long a follower waits before it connects to the
// next edge, as clients back off.
const followerPause = 100 * time.Millisecond

// pauseAfter is the pause before the next connection after one that ended
// with err: none after a 4012, which asks the client to reconnect at once
// (a node rebalancing the cluster), followerPause otherwise.
func pauseAfter(err error) time.Duration {
	if client.ReconnectAtOnce(err) {
		return 0
	}
	return followerPause
}

// session follows the rooms on one connection until it ends, and returns
// why it ended (nil when the follower ended it: a subscribe refused).
func (f *follower) session(ctx context.Context, conn *client.Conn, edge int) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() }) // 1000, as a monitor leaving
	defer stop()
	defer conn.NetConn().Close()
	f.mu.Lock()
	f.conns++
	f.onEdge, f.conn = edge, conn
	subs := make([]client.SubscribeData, 0, len(f.rooms))
	for _, r := range f.rooms {
		lg := f.logs[r]
		sd := client.SubscribeData{Channel: r}
		if lg.started || f.fromStart {
			since := lg.start
			if n := len(lg.seqs); n > 0 {
				since = lg.seqs[n-1]
			}
			sd.Since = &since
		}
		subs = append(subs, sd)
	}
	f.mu.Unlock()
	defer f.disconnected()

	for _, sd := range subs {
		if err := conn.Request(wire.EventSubscribe, sd.Channel, sd); err != nil {
			return err
		}
	}
	for {
		// Read returns data messages only (it answers the edge's pings,
		// every 25 s, on the way): a connection without any for two
		// minutes, while events are published every few milliseconds, is
		// dead. (Its ends are seen at once otherwise: a killed edge's
		// socket is closed by Docker's proxy, a stopped one sends 1001.)
		m, err := conn.Read(time.Now().Add(2 * time.Minute))
		if err != nil {
			f.ended(err)
			return err
		}
		if !f.handle(m) {
			return nil
		}
	}
}

// handle records one message; false ends the connection (a subscribe was
// refused: another edge may serve it).
func (f *follower) handle(m wire.Message) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m.Type {
	case wire.TypeEvent:
		if lg := f.logs[m.Room]; lg != nil {
			lg.seqs = append(lg.seqs, m.Seq)
		}
	case wire.TypeResponse:
		var res wire.SubscribeResult
		lg := f.logs[m.ID]
		if lg == nil || json.Unmarshal(m.Data, &res) != nil {
			return true
		}
		lg.subscribed = true
		switch {
		case !lg.started && !f.fromStart:
			lg.started, lg.start = true, res.Seq
		default: // a resume (from 0 at first for a follower fromStart)
			lg.started = true
			f.resumes++
			f.replayed += res.Replayed
			if !res.Recovered && !lg.resetPending {
				lg.unrecovered++
			}
		}
		if lg.resetPending {
			lg.resetPending = false
			lg.epochs++
			lg.epochStart, lg.epochFrom = res.Seq, len(lg.seqs)
		}
	case wire.TypeError:
		var e struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(m.Data, &e)
		f.refused[e.Code]++
		return false
	}
	return true
}

// ended records why a connection ended.
func (f *follower) ended(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ce *client.CloseError
	if !errors.As(err, &ce) {
		f.closes["no close frame"]++
		return
	}
	f.closes[fmt.Sprint(ce.Code)]++
	if ce.Code == wire.CloseRebalance {
		f.rebalanced++
	}
	if ce.Code == wire.CloseStreamReset {
		f.resets++
		for _, lg := range f.logs {
			lg.resetPending, lg.resetAt = true, len(lg.seqs)
		}
	}
}

func (f *follower) disconnected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onEdge, f.conn = -1, nil
	for _, lg := range f.logs {
		lg.subscribed = false
	}
}

// drop ends the follower's connection from its side, as a network that
// fails a client does: it reconnects to the next edge and resumes.
func (f *follower) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		_ = f.conn.NetConn().Close()
	}
}

// following reports whether the follower is subscribed to every room,
// or why not.
func (f *follower) following() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rooms {
		if lg := f.logs[r]; !lg.subscribed || lg.resetPending {
			return fmt.Errorf("%s: not subscribed to %s (on edge %d, closes %v, refused %v)", f.name, r, f.onEdge, f.closes, f.refused)
		}
	}
	return nil
}

// edgeNow is the edge the follower is connected to, -1 if none.
func (f *follower) edgeNow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.onEdge
}

// followerStats are a follower's counts.
type followerStats struct {
	received, conns, resumes, replayed, resets, rebalanced int
}

func (f *follower) stats() followerStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := followerStats{conns: f.conns, resumes: f.resumes, replayed: f.replayed, resets: f.resets, rebalanced: f.rebalanced}
	for _, lg := range f.logs {
		st.received += len(lg.seqs)
	}
	return st
}

// expected is what a follower must have received of a room stored as
// truth: every event after its start, or, once the stream was recreated,
// every event after the answer to its subscribe that followed.
func (lg *roomLog) expected(truth []stored) (got, want []uint64) {
	from, after := 0, lg.start
	if lg.epochs > 0 {
		from, after = lg.epochFrom, lg.epochStart
	}
	for _, s := range truth {
		if s.Seq > after {
			want = append(want, s.Seq)
		}
	}
	return lg.seqs[from:], want
}

// caughtUp reports whether the follower has received the last event of
// each room it must get, or what it still lacks.
func (f *follower) caughtUp(truth map[string][]stored) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rooms {
		got, want := f.logs[r].expected(truth[r])
		if len(want) > 0 && (len(got) == 0 || got[len(got)-1] < want[len(want)-1]) {
			return fmt.Errorf("%s: %s: received %d of %d events so far", f.name, r, len(got), len(want))
		}
	}
	return nil
}

// check compares what the follower received of each room with the truth:
// the same sequence, no gap, no duplicate, in order. After a 4010 it checks
// what the issue asks (events published after the subscribe that followed
// reach the follower) and that nothing came twice since the reset.
func (f *follower) check(truth map[string][]stored) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var problems []string
	for _, r := range f.rooms {
		lg := f.logs[r]
		if !lg.started {
			problems = append(problems, fmt.Sprintf("%s: %s: never subscribed", f.name, r))
			continue
		}
		got, want := lg.expected(truth[r])
		if d := diffSeqs(got, want); d != "" {
			problems = append(problems, fmt.Sprintf("%s: %s (start %d, epochs %d): %s", f.name, r, lg.start, lg.epochs, d))
		}
		if lg.epochs > 0 {
			if d := increasing(lg.seqs[lg.resetAt:]); d != "" {
				problems = append(problems, fmt.Sprintf("%s: %s since the reset: %s", f.name, r, d))
			}
		}
		if lg.unrecovered > 0 {
			problems = append(problems, fmt.Sprintf("%s: %s: %d resumes said recovered: false", f.name, r, lg.unrecovered))
		}
	}
	return problems
}

// diffSeqs describes how got differs from want, "" when it does not.
func diffSeqs(got, want []uint64) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if i == len(got) && i == len(want) {
		return ""
	}
	inGot := make(map[uint64]int, len(got))
	for _, s := range got {
		inGot[s]++
	}
	inWant := make(map[uint64]bool, len(want))
	var missing, dups, extra []uint64
	for _, s := range want {
		inWant[s] = true
		if inGot[s] == 0 {
			missing = append(missing, s)
		}
	}
	for s, n := range inGot {
		if n > 1 {
			dups = append(dups, s)
		}
		if !inWant[s] {
			extra = append(extra, s)
		}
	}
	at := func(s []uint64, i int) string {
		if i < len(s) {
			return fmt.Sprint(s[i])
		}
		return "end"
	}
	return fmt.Sprintf("received %d events, want %d; first difference at #%d (got %s, want %s; before it %v); missing %v, duplicated %v, unexpected %v",
		len(got), len(want), i, at(got, i), at(want, i), got[max(0, i-3):i], head(missing), head(dups), head(extra))
}

// increasing describes the first place seqs does not increase, "" if none.
func increasing(seqs []uint64) string {
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			return fmt.Sprintf("seq %d after %d (#%d)", seqs[i], seqs[i-1], i)
		}
	}
	return ""
}

// head is the first ten of s, for messages.
func head(s []uint64) []uint64 { return s[:min(len(s), 10)] }
