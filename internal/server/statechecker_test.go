package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// checkerSeedEnv overrides TestStateChecker's random seed, to replay a run.
const checkerSeedEnv = "ROOMCAST_CHECKER_SEED"

// The checker's scale: bounded so that a run stays well under a minute
// with -race on two busy cores.
const (
	checkerSteps      = 700 // about 600 publishes
	checkerMaxClients = 8
	checkerRetention  = 20 // events kept per room: history expires during the run
	checkerKeys       = 5
	// checkerKeeperSync is how many events of a room may be published
	// before the test waits for the state keeper to have them all: below
	// the retention, so the keeper never falls behind it. (A keeper that
	// does misses events and their keys go stale, as documented; the
	// test checks the state's exactness, not that loss.)
	checkerKeeperSync = checkerRetention / 2
)

var checkerRooms = []string{"pool:chk1", "pool:chk2", "workflow:chk3"}

// A seeded random interleaving of keyed sets, deletes and unkeyed events,
// published through every server of a three-node cluster (stream R3,
// small retention), with clients that subscribe with state on one node,
// drop their connection and resume with since, epoch and state on
// another, some soon (a recovered resume), some after the room's history
// moved past them (a state instead of a replay). Every client's picture
// (the state, then each event after it; a fresh state replaces it) must
// end equal to the state computed from what was published, every state
// must be exact as of its position, and no client may receive an event
// at or below a position it already had.
func TestStateChecker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster and three nodes; skipped with -short")
	}
	seed := checkerSeed(t)
	t.Logf("seed %d (replay with %s=%d)", seed, checkerSeedEnv, seed)
	k := newChecker(t, rand.New(rand.NewPCG(seed, 0)))

	k.join(k.newClient())
	k.join(k.newClient())
	for step := range checkerSteps {
		k.step(step)
	}
	k.finish()
}

// checkerSeed is the env override, else a fresh seed.
func checkerSeed(t *testing.T) uint64 {
	s := os.Getenv(checkerSeedEnv)
	if s == "" {
		return rand.Uint64()
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", checkerSeedEnv, s, err)
	}
	return seed
}

// checker drives the run from the test's goroutine: everything but the
// clients' views is its own.
type checker struct {
	t     *testing.T
	rng   *rand.Rand
	nodes []*server.Server
	pubs  []jetstream.JetStream // one per NATS server
	truth map[string]*roomTruth
	bySeq map[uint64]published

	unkept  map[string]int // events published per room since the keeper last had them all
	clients []*checkClient
	ids     int // request ids handed out
	stats   checkerStats
}

// checkerStats counts what the run exercised, so a run that never took
// one of the paths under test fails instead of passing vacuously.
type checkerStats struct {
	publishes, sets, deletes, unkeyed int
	drops, resumes                    int
	states, recovered, stateResumes   int // fresh states, recovered resumes, unrecoverable resumes answered with state
	lossyResumes, unavailable, left   int // recovered:false without state, UNAVAILABLE retries, errors after a response
}

// published is what the test stored under a seq.
type published struct {
	room    string
	key     string
	deleted bool
}

// roomTruth is everything published to a room, in seq order.
type roomTruth struct {
	events []publishedAt
}

type publishedAt struct {
	seq uint64
	published
}

// asOf is the room's true state after every event up to seq.
func (r *roomTruth) asOf(seq uint64) picture {
	p := picture{}
	for _, e := range r.events {
		if e.seq > seq {
			break
		}
		p.apply(wire.Message{Seq: e.seq, Key: e.key, KeyDeleted: e.deleted})
	}
	return p
}

func (r *roomTruth) last() uint64 {
	if len(r.events) == 0 {
		return 0
	}
	return r.events[len(r.events)-1].seq
}

func newChecker(t *testing.T, rng *rand.Rand) *checker {
	cluster := natstest.RunCluster(t, 3)
	k := &checker{t: t, rng: rng, truth: map[string]*roomTruth{}, bySeq: map[uint64]published{}, unkept: map[string]int{}}
	for _, s := range cluster.Servers {
		k.nodes = append(k.nodes, startNode(t, nil, func(c *config.Serve) {
			c.NATS = config.List{s.ClientURL()}
			c.StreamReplicas = 3
			c.RetentionMaxPerRoom = checkerRetention
		}))
		js, err := jetstream.New(natstest.Connect(t, s.ClientURL(), nats.MaxReconnects(-1)))
		if err != nil {
			t.Fatal(err)
		}
		k.pubs = append(k.pubs, js)
	}
	for _, r := range checkerRooms {
		k.truth[r] = &roomTruth{}
	}
	return k
}

// step takes one random action.
func (k *checker) step(step int) {
	switch x := k.rng.Float64(); {
	case x < 0.04 && len(k.clients) < checkerMaxClients:
		k.join(k.newClient())
	case x < 0.10:
		if c := k.pick(func(c *checkClient) bool { return c.conn != nil }); c != nil {
			k.drop(c, step)
			return
		}
		k.publish()
	case x < 0.40:
		if c := k.pick(func(c *checkClient) bool { return c.conn == nil && c.resumeAt <= step }); c != nil {
			k.resume(c)
			return
		}
		k.publish()
	default:
		k.publish()
	}
}

// pick returns a random client that ok accepts, or nil.
func (k *checker) pick(ok func(*checkClient) bool) *checkClient {
	k.notice()
	var cands []*checkClient
	for _, c := range k.clients {
		if ok(c) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[k.rng.IntN(len(cands))]
}

// notice makes the clients whose connection ended on its own (a close
// by the node) offline, to resume at once.
func (k *checker) notice() {
	for _, c := range k.clients {
		if c.conn != nil && c.ended() {
			k.t.Logf("%s: connection ended by the node: %v", c.name, c.endErr())
			c.conn, c.resumeAt = nil, 0
		}
	}
}

// publish stores a keyed set, a delete or an unkeyed event in a random
// room through a random server.
func (k *checker) publish() {
	room := checkerRooms[k.rng.IntN(len(checkerRooms))]
	var p published
	p.room = room
	n := k.stats.publishes
	name := "pool.scaling"
	switch x := k.rng.Float64(); {
	case x < 0.6:
		p.key, name = fmt.Sprintf("worker:w%d", k.rng.IntN(checkerKeys)), "worker.status_changed"
		k.stats.sets++
	case x < 0.75:
		p.key, p.deleted, name = fmt.Sprintf("worker:w%d", k.rng.IntN(checkerKeys)), true, "worker.removed"
		k.stats.deletes++
	default:
		k.stats.unkeyed++
	}
	m := nats.NewMsg("roomcast.rooms." + wire.MustRoom(room).Token())
	m.Data = fmt.Appendf(nil, `{"event":%q,"data":{"n":%d}}`, name, n)
	m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("checker-%d", n))
	if p.key != "" {
		m.Header.Set(wire.HeaderKey, p.key)
	}
	if p.deleted {
		m.Header.Set(wire.HeaderKeyDeleted, "true")
	}
	seq := k.store(k.pubs[k.rng.IntN(len(k.pubs))], m)
	k.stats.publishes++
	tr := k.truth[room]
	if seq <= tr.last() {
		k.t.Fatalf("publish %d stored at %d, not after the room's %d", n, seq, tr.last())
	}
	tr.events = append(tr.events, publishedAt{seq: seq, published: p})
	k.bySeq[seq] = p
	if k.unkept[room]++; k.unkept[room] >= checkerKeeperSync {
		servertest.WaitKeptWithin(k.t, k.pubs[0], seq, 20*time.Second)
		clear(k.unkept)
	}
}

// store publishes m, retrying with its message id (idempotent) while the
// cluster is busy, and returns its seq.
func (k *checker) store(js jetstream.JetStream, m *nats.Msg) uint64 {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, err := js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			return ack.Sequence
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("publish %s: %v", m.Header.Get(jetstream.MsgIDHeader), err)
		}
		time.Sleep(100 * time.Millisecond) // back off between retries, not a synchronisation
	}
}

// newClient makes a client of 1 to 3 random rooms, not yet connected.
func (k *checker) newClient() *checkClient {
	rooms := slices.Clone(checkerRooms)
	k.rng.Shuffle(len(rooms), func(i, j int) { rooms[i], rooms[j] = rooms[j], rooms[i] })
	rooms = rooms[:1+k.rng.IntN(len(rooms))]
	slices.Sort(rooms)
	c := &checkClient{name: fmt.Sprintf("client%d", len(k.clients)), rooms: rooms, node: -1, views: map[string]*roomView{}, pending: map[string]pendingSub{}}
	for _, r := range rooms {
		c.views[r] = &roomView{pic: picture{}, fresh: true}
	}
	k.clients = append(k.clients, c)
	return c
}

// join connects c to a random node other than its last and subscribes
// it to its rooms: with state, and with since and epoch when it has a
// position in the room.
func (k *checker) join(c *checkClient) {
	node := k.rng.IntN(len(k.nodes))
	if c.node >= 0 {
		node = (c.node + 1 + k.rng.IntN(len(k.nodes)-1)) % len(k.nodes)
	}
	c.node = node
	c.connect(k.t, k.nodes[node])
	for _, r := range c.rooms {
		if !k.subscribe(c, r) {
			return // the node closed the connection: resumed later
		}
	}
}

// drop closes c's connection; it resumes soon (a recovered resume) or
// after its rooms' history has moved on (a state instead of a replay).
func (k *checker) drop(c *checkClient, step int) {
	c.disconnect(k.t)
	k.stats.drops++
	if k.rng.IntN(2) == 0 {
		c.resumeAt = step + 1 + k.rng.IntN(10)
	} else {
		c.resumeAt = step + 100 + k.rng.IntN(150)
	}
}

func (k *checker) resume(c *checkClient) {
	k.stats.resumes++
	k.join(c)
}

// subscribe subscribes c to room and waits for the answer, retrying
// UNAVAILABLE (no keeper yet) and subscribing again without since after
// a lossy resume (recovered: false without state). It reports false when
// c's connection ended meanwhile.
func (k *checker) subscribe(c *checkClient, room string) bool {
	deadline := time.Now().Add(30 * time.Second)
	for {
		k.ids++
		id := fmt.Sprintf("s%d", k.ids)
		data, withSince := c.request(id, room)
		if err := c.conn.Request(wire.EventSubscribe, id, data); err != nil {
			k.t.Logf("%s: send subscribe: %v", c.name, err)
			return false
		}
		var m wire.Message
		select {
		case m = <-c.replies:
		case <-c.done:
			return false
		case <-time.After(time.Until(deadline)):
			k.t.Fatalf("%s: no answer to subscribe %s %s within 30 s", c.name, id, data)
		}
		if m.Type == wire.TypeError {
			var e wire.ErrorData
			_ = json.Unmarshal(m.Data, &e)
			if e.Code != wire.CodeUnavailable || time.Now().After(deadline) {
				k.t.Fatalf("%s: subscribe %s %s: %s", c.name, id, data, m.Data)
			}
			k.stats.unavailable++
			time.Sleep(100 * time.Millisecond) // a client's back-off before it asks again
			continue
		}
		var res wire.StateResult
		if err := json.Unmarshal(m.Data, &res); err != nil {
			k.t.Fatalf("%s: response %s: %v", c.name, m.Data, err)
		}
		switch {
		case res.State != nil && withSince:
			k.stats.stateResumes++
		case res.State != nil:
			k.stats.states++
		case res.Recovered:
			k.stats.recovered++
		default:
			// Events were lost while it replayed: the picture is no
			// longer exact; a fresh state is.
			k.stats.lossyResumes++
			continue
		}
		return true
	}
}

// finish stops publishing, brings every client back, waits until each
// has every room's last event, and checks what each received.
func (k *checker) finish() {
	t := k.t
	k.notice()
	for _, c := range k.clients {
		if c.conn == nil {
			k.resume(c)
		}
		for _, r := range c.rooms {
			if c.isLeft(r) {
				k.stats.left++
				k.subscribe(c, r)
			}
		}
	}
	natstest.WaitFor(t, 30*time.Second, func() error {
		for _, c := range k.clients {
			if c.ended() {
				return fmt.Errorf("%s: connection ended at the end: %v", c.name, c.endErr())
			}
			for _, r := range c.rooms {
				if got, want := c.position(r), k.truth[r].last(); got < want {
					return fmt.Errorf("%s: %s at %d, want %d", c.name, r, got, want)
				}
			}
		}
		return nil
	})
	t.Logf("%+v", k.stats)
	for i, n := range k.nodes {
		if v := value(scrape(t, n.AdminAddr()), "roomcast_state_events_missed_total"); v != 0 {
			t.Errorf("node %d: the keeper missed %v events: it fell behind the retention, and states may be stale", i, v)
		}
	}
	for _, c := range k.clients {
		c.disconnect(t)
		k.check(c)
	}
	s := k.stats
	if s.states == 0 || s.recovered == 0 || s.stateResumes == 0 || s.deletes == 0 {
		t.Errorf("the run did not exercise every path: %+v", s)
	}
}

// check compares what c received with what was published.
func (k *checker) check(c *checkClient) {
	t := k.t
	for _, p := range c.problems {
		t.Errorf("%s: %s", c.name, p)
	}
	for _, m := range c.events {
		p, ok := k.bySeq[m.Seq]
		if !ok || p.room != m.Room || p.key != m.Key || p.deleted != m.KeyDeleted {
			t.Errorf("%s: received %s seq %d key %q deleted %v; published %+v (%v)", c.name, m.Room, m.Seq, m.Key, m.KeyDeleted, p, ok)
		}
	}
	for _, s := range c.states {
		if want := k.truth[s.room].asOf(s.seq); s.pic.String() != want.String() {
			t.Errorf("%s: state of %s as of %d is %v, want %v", c.name, s.room, s.seq, s.pic, want)
		}
	}
	for _, r := range c.rooms {
		got, want := c.views[r].pic, k.truth[r].asOf(k.truth[r].last())
		if got.String() != want.String() {
			t.Errorf("%s: picture of %s is %v, want %v", c.name, r, got, want)
		}
	}
}

// checkClient is one user of the service across its connections.
type checkClient struct {
	// Set at creation.
	name  string
	rooms []string

	// Owned by the driver.
	node     int          // the node of its last connection, -1 before any
	conn     *client.Conn // nil while offline
	resumeAt int          // the step from which an offline client comes back

	// Handed from the reader to the driver: the answer to the pending
	// subscribe; done is closed when the reader ends.
	replies chan wire.Message
	done    chan struct{}

	// Shared by the driver and the reader.
	mu       sync.Mutex
	views    map[string]*roomView
	pending  map[string]pendingSub // subscribes by id, answered or not
	end      error                 // why the last connection's reader ended
	problems []string
	events   []wire.Message // every event and state entry received
	states   []stateSeen
}

// roomView is a client's knowledge of a room.
type roomView struct {
	pic   picture
	last  uint64 // the position it has: events must come above it
	epoch string
	fresh bool // no position yet: subscribe without since
	left  bool // an error followed the response: not a member
}

type pendingSub struct {
	room      string
	withSince bool
	answered  bool
}

// stateSeen is a state a client received, checked against the truth at
// the end.
type stateSeen struct {
	room string
	seq  uint64
	pic  picture
}

// request builds the subscribe of room and records it as pending.
func (c *checkClient) request(id, room string) (map[string]any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.views[room]
	data := map[string]any{"channel": room, "state": true}
	withSince := !v.fresh
	if withSince {
		data["since"], data["epoch"] = v.last, v.epoch
	}
	c.pending[id] = pendingSub{room: room, withSince: withSince}
	return data, withSince
}

// connect dials srv and starts the reader, which the connection's close
// ends.
func (c *checkClient) connect(t *testing.T, srv *server.Server) {
	c.conn = dial(t, srv)
	c.replies = make(chan wire.Message, 1)
	c.done = make(chan struct{})
	c.mu.Lock()
	c.end = nil
	c.mu.Unlock()
	go c.read(c.conn, c.replies, c.done)
}

// disconnect closes the connection and waits for its reader.
func (c *checkClient) disconnect(t *testing.T) {
	if c.conn == nil {
		return
	}
	_ = c.conn.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: reader still running 10 s after the close", c.name)
	}
	c.conn = nil
}

func (c *checkClient) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *checkClient) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.end
}

func (c *checkClient) isLeft(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.views[room].left
}

func (c *checkClient) position(room string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.views[room].last
}

// read takes conn's messages until it ends.
func (c *checkClient) read(conn *client.Conn, replies chan<- wire.Message, done chan<- struct{}) {
	defer close(done)
	for {
		m, err := conn.Read(time.Time{})
		if err != nil {
			c.mu.Lock()
			c.end = err
			// 1000 echoes the client's own close; 4008 (too slow) is
			// allowed, and the client resumes; any other close is not.
			if ce := (*client.CloseError)(nil); errors.As(err, &ce) && ce.Code != 1000 && ce.Code != 4008 {
				c.problemf("closed by the node: %d %s", ce.Code, ce.Reason)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		reply := c.take(m)
		c.mu.Unlock()
		if reply {
			select {
			case replies <- m:
			default:
				c.mu.Lock()
				c.problemf("an answer nobody waits for: %+v", m)
				c.mu.Unlock()
			}
		}
	}
}

// take applies m to the client's views (c.mu held) and reports whether
// it answers the pending subscribe.
func (c *checkClient) take(m wire.Message) bool {
	switch m.Type {
	case wire.TypeEvent:
		v := c.views[m.Room]
		if v == nil {
			c.problemf("an event of a room not subscribed: %+v", m)
			return false
		}
		if m.Seq <= v.last {
			c.problemf("%s: event %d at or below the position it had, %d", m.Room, m.Seq, v.last)
		}
		v.last = max(v.last, m.Seq)
		v.pic.apply(m)
		c.events = append(c.events, m)
		return false
	case wire.TypeResponse:
		p, ok := c.pending[m.ID]
		if !ok || p.answered {
			c.problemf("a response to no pending subscribe: %+v", m)
			return false
		}
		p.answered = true
		c.pending[m.ID] = p
		c.answer(p, m)
		return true
	case wire.TypeError:
		p, ok := c.pending[m.ID]
		switch {
		case !ok:
			c.problemf("an error for no subscribe: %+v (%s)", m, m.Data)
			return false
		case p.answered:
			// Catching up after the response failed: the room is left,
			// and is subscribed again with since at the end.
			c.views[p.room].left = true
			return false
		}
		delete(c.pending, m.ID)
		return true
	}
	c.problemf("unexpected message %+v", m)
	return false
}

// answer applies a subscribe response for p to its room's view.
func (c *checkClient) answer(p pendingSub, m wire.Message) {
	var res wire.StateResult
	if err := json.Unmarshal(m.Data, &res); err != nil || res.Status != "subscribed" || res.Channel != p.room || wire.CheckEpoch(res.Epoch) != nil {
		c.problemf("subscribe response %s (%v)", m.Data, err)
		return
	}
	v := c.views[p.room]
	v.epoch, v.left = res.Epoch, false
	if res.State == nil {
		if !p.withSince {
			c.problemf("%s: a subscribe with state answered without it: %s", p.room, m.Data)
		}
		if !res.Recovered {
			v.fresh = true // lossy: subscribe again for a fresh state
		}
		v.last = max(v.last, res.Seq)
		return
	}
	pic := picture{}
	var prev uint64
	for _, e := range res.State {
		if e.Type != wire.TypeEvent || e.Room != p.room || e.Key == "" || e.KeyDeleted || e.Seq <= prev || e.Seq > res.Seq || e.TS == "" {
			c.problemf("%s: state entry %+v (after %d, state as of %d)", p.room, e, prev, res.Seq)
		}
		prev = e.Seq
		pic.apply(e)
		c.events = append(c.events, e)
	}
	c.states = append(c.states, stateSeen{room: p.room, seq: res.Seq, pic: pic})
	if p.withSince && res.Seq < v.last {
		c.problemf("%s: a resume from %d answered with a state as of %d, before it", p.room, v.last, res.Seq)
	}
	if !p.withSince {
		v.last = res.Seq // the client said nothing of what it had
	}
	v.last = max(v.last, res.Seq)
	v.pic, v.fresh = maps.Clone(pic), false
}

// problemf records a broken guarantee (c.mu held).
func (c *checkClient) problemf(format string, args ...any) {
	if len(c.problems) < 50 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}
