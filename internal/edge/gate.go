package edge

import (
	"container/list"
	"net"
	"sync"

	"github.com/roomcast/roomcast/internal/metrics"
)

// DefaultMaxHandshakes bounds the handshakes in progress on a node: far
// more than a burst of reconnecting clients needs (a handshake takes a
// round trip or two), few enough that sockets which send their request
// slowly, or never, cannot pile up goroutines and buffers. It does not
// derive from MaxConnections: a small limit there would let a few slow
// sockets lock everyone out.
const DefaultMaxHandshakes = 1024

// DefaultMaxHandshakesPerSource bounds the handshakes in progress from one
// source address (an IPv4 address, an IPv6 /64): plenty for the clients
// behind one NAT reconnecting at once, a small share of the node's.
const DefaultMaxHandshakesPerSource = 64

// handshakeGate bounds the handshakes in progress by count, on the node
// and per source; the head and handshake timeouts bound each by time.
//
// A full gate does not refuse the newcomer: it closes the oldest pending
// handshake of the same source when that source is at its cap, else the
// oldest of the source holding the most (see victim). Refusing newcomers
// would let sockets that trickle their request (slowloris) hold every slot
// and lock out every client. Closing the oldest of all would let an
// attacker with a few dozen addresses, opening sockets fast, cut off every
// handshake slower than the gate's turnover (a client far away, on TLS);
// the source holding the most is the attacker's, whose sockets are the
// ones that go, while a client's one or two are left to finish.
type handshakeGate struct {
	limit, perSource int

	mu       sync.Mutex
	all      list.List             // of *pendingHandshake, oldest first
	bySource map[string]*list.List // of *pendingHandshake per source, oldest first
}

// pendingHandshake is one handshake in the gate.
type pendingHandshake struct {
	nc        net.Conn
	source    string        // "": not capped per source
	inAll     *list.Element // nil once it left the gate
	inSource  *list.Element
	evictedBy string // why the gate closed it: a metrics.Refused* reason; "": it did not
}

// newHandshakeGate returns a gate for limit handshakes at once, perSource
// from one source (the defaults when not positive).
func newHandshakeGate(limit, perSource int) *handshakeGate {
	if limit <= 0 {
		limit = DefaultMaxHandshakes
	}
	if perSource <= 0 {
		perSource = DefaultMaxHandshakesPerSource
	}
	return &handshakeGate{limit: limit, perSource: perSource, bySource: make(map[string]*list.List)}
}

// enter admits the handshake of nc from source and returns it, with the
// handshake it pushed out to make room, if any: the caller ends that one
// (outside the gate's lock) and reports it.
func (g *handshakeGate) enter(nc net.Conn, source string) (p, evicted *pendingHandshake) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if mine := g.bySource[source]; source != "" && mine != nil && mine.Len() >= g.perSource {
		evicted = g.evict(mine.Front().Value.(*pendingHandshake), metrics.RefusedSource)
	} else if g.all.Len() >= g.limit {
		evicted = g.evict(g.victim(), metrics.RefusedCapacity)
	}
	p = &pendingHandshake{nc: nc, source: source}
	p.inAll = g.all.PushBack(p)
	if source != "" {
		mine := g.bySource[source]
		if mine == nil {
			mine = list.New()
			g.bySource[source] = mine
		}
		p.inSource = mine.PushBack(p)
	}
	return p, evicted
}

// victim is the handshake a full gate closes for a newcomer whose source
// has room: the oldest of the source holding the most, or the oldest of
// all when no source holds more than one (then none stands out, and the
// oldest has had the longest). Handshakes of no source (from trusted
// proxies) are only ever closed that way. g.mu is held; the scan is over
// the sources with handshakes in progress, at most the gate's limit, and
// only when the gate is full.
func (g *handshakeGate) victim() *pendingHandshake {
	var most *list.List
	for _, l := range g.bySource {
		if most == nil || l.Len() > most.Len() {
			most = l
		}
	}
	if most != nil && most.Len() > 1 {
		return most.Front().Value.(*pendingHandshake)
	}
	return g.all.Front().Value.(*pendingHandshake)
}

// evict takes p out of the gate, marked as closed for reason.
func (g *handshakeGate) evict(p *pendingHandshake, reason string) *pendingHandshake {
	g.remove(p)
	p.evictedBy = reason
	return p
}

// leave takes p out of the gate once its handshake is over. It reports
// false when the gate evicted p before: its socket is closed, or about to
// be, and the handshake must not go on.
func (g *handshakeGate) leave(p *pendingHandshake) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.evictedBy != "" {
		return false
	}
	g.remove(p)
	return true
}

// remove unlinks p; g.mu is held.
func (g *handshakeGate) remove(p *pendingHandshake) {
	if p.inAll == nil {
		return
	}
	g.all.Remove(p.inAll)
	p.inAll = nil
	if p.inSource != nil {
		mine := g.bySource[p.source]
		mine.Remove(p.inSource)
		p.inSource = nil
		if mine.Len() == 0 {
			delete(g.bySource, p.source) // no map entry outlives its source's handshakes
		}
	}
}

// evicted reports whether the gate closed p to make room.
func (g *handshakeGate) evicted(p *pendingHandshake) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return p.evictedBy != ""
}

// inProgress is the number of handshakes in the gate.
func (g *handshakeGate) inProgress() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.all.Len()
}
