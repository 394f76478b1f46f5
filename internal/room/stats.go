package room

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/connz"
)

// What a node tells its operators of its rooms (/roomz): each room's
// members, head, tail and event rate. The feed pays one increment under
// the room's lock, which it holds anyway, and one atomic add per event;
// rates are worked out when the node samples them (Sample), not per event.

// rateBook is the rooms' event counts at the last Sample and the rates
// worked out from them.
type rateBook struct {
	mu    sync.Mutex
	at    time.Time          // guarded by mu: the last Sample
	count map[string]uint64  // guarded by mu: each room's events at the last Sample
	rate  map[string]float64 // guarded by mu: events a second between the last two
}

// EventsDelivered is how many events the node's rooms have delivered to
// their members since the hub started, every room together (an event
// with no member counts once too): what events a second are measured by.
func (h *Hub) EventsDelivered() uint64 { return h.delivered.Load() }

// Sample works out each room's event rate since the last Sample; the
// node's sampler calls it at a fixed interval, and Stats reports the
// rates until the next.
func (h *Hub) Sample(now time.Time) {
	counts := make(map[string]uint64)
	h.eachRoom(func(rm *room) {
		rm.mu.Lock()
		counts[rm.name.String()] = rm.events
		rm.mu.Unlock()
	})
	b := &h.rates
	b.mu.Lock()
	defer b.mu.Unlock()
	rates := make(map[string]float64, len(counts))
	if secs := now.Sub(b.at).Seconds(); !b.at.IsZero() && secs > 0 {
		for name, n := range counts {
			// A room set up since the last sample counts from zero.
			rates[name] = float64(n-min(b.count[name], n)) / secs
		}
	}
	b.at, b.count, b.rate = now, counts, rates
}

// Stats reports every room of the node, sorted by name: members, the last
// seq delivered, the bytes of its tail, its event rate at the last
// Sample.
func (h *Hub) Stats() []connz.RoomStats {
	out := []connz.RoomStats{} // /roomz lists no room as [], not null
	h.eachRoom(func(rm *room) {
		rm.mu.Lock()
		st := connz.RoomStats{Room: rm.name.String(), Members: len(rm.members), Head: rm.lastSeq, TailBytes: rm.tailBytes}
		rm.mu.Unlock()
		out = append(out, st)
	})
	h.rates.mu.Lock()
	for i := range out {
		out[i].EventsPerSecond = h.rates.rate[out[i].Room]
	}
	h.rates.mu.Unlock()
	slices.SortFunc(out, func(a, b connz.RoomStats) int { return strings.Compare(a.Room, b.Room) })
	return out
}

// eachRoom calls fn with every registered room, one shard's rooms at a
// time, outside the shard's lock (a room's lock is never taken under a
// shard's: a large room's fan-out holds it for a while).
func (h *Hub) eachRoom(fn func(*room)) {
	var rooms []*room
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		rooms = rooms[:0]
		for _, rm := range sh.rooms {
			rooms = append(rooms, rm)
		}
		sh.mu.Unlock()
		for _, rm := range rooms {
			fn(rm)
		}
	}
}
