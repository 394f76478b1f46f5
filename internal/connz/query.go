package connz

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"

	"github.com/roomcast/roomcast/internal/wire"
)

// The sort orders of /connz (its sort parameter).
const (
	SortLag         = "lag"          // most events queued first (the default)
	SortQueuedBytes = "queued_bytes" // most bytes queued first
	SortAge         = "age"          // oldest connection first
	SortOldestWait  = "oldest_wait"  // longest-waiting oldest frame first
)

// Paging of /connz: the first page holds DefaultLimit connections, and
// no page more than MaxLimit.
const (
	DefaultLimit = 256
	MaxLimit     = 1024
)

// Query is /connz's query: which connections, in which order, which page.
type Query struct {
	Sort string
	// Filters; "" matches every connection. Room is a room's name
	// (pool:p1); User a token's subject; Remote an ip:port, or an ip,
	// which matches every port.
	Room, User, Remote string
	Offset, Limit      int

	remoteIP netip.Addr // set when Remote is an ip without a port
}

// ParseQuery reads /connz's query parameters: sort (lag, queued_bytes,
// age, oldest_wait), room, user, remote, offset and limit. An unknown
// parameter, a repeated one or a bad value is an error that says which.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Sort: SortLag, Limit: DefaultLimit}
	for name, vals := range v {
		if len(vals) != 1 {
			return Query{}, fmt.Errorf("parameter %q given %d times; give it once", name, len(vals))
		}
		if err := q.set(name, vals[0]); err != nil {
			return Query{}, err
		}
	}
	return q, nil
}

// set applies one parameter.
func (q *Query) set(name, val string) error {
	var err error
	switch name {
	case "sort":
		err = q.setSort(val)
	case "room":
		if _, perr := wire.ParseRoom(val); perr != nil {
			err = fmt.Errorf("room %q: %w", val, perr)
		}
		q.Room = val
	case "user":
		if val == "" {
			err = fmt.Errorf("user is empty; leave it out to list every user")
		}
		q.User = val
	case "remote":
		err = q.setRemote(val)
	case "offset":
		q.Offset, err = count("offset", val, 0, 1<<31-1)
	case "limit":
		q.Limit, err = count("limit", val, 1, MaxLimit)
	default:
		err = fmt.Errorf("unknown parameter %q (known: sort, room, user, remote, offset, limit)", name)
	}
	return err
}

func (q *Query) setSort(val string) error {
	switch val {
	case SortLag, SortQueuedBytes, SortAge, SortOldestWait:
		q.Sort = val
		return nil
	}
	return fmt.Errorf("sort %q: want one of lag, queued_bytes, age, oldest_wait", val)
}

// setRemote takes an ip:port, or an ip matching every port.
func (q *Query) setRemote(val string) error {
	if ip, err := netip.ParseAddr(val); err == nil {
		q.Remote, q.remoteIP = val, ip.Unmap()
		return nil
	}
	ap, err := netip.ParseAddrPort(val)
	if err != nil {
		return fmt.Errorf("remote %q: want ip:port or ip", val)
	}
	q.Remote = ap.String() // as the node writes addresses: [::1]:80
	return nil
}

// count parses a parameter that is an integer in [lo, hi].
func count(name, val string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(val)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q: want an integer from %d to %d", name, val, lo, hi)
	}
	return n, nil
}

// Apply filters conns by q, sorts them and returns q's page of them, for
// the node named node. conns is sorted in place.
func Apply(conns []Conn, q Query, node string) Page {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	if q.Sort == "" {
		q.Sort = SortLag
	}
	kept := conns[:0]
	for _, c := range conns {
		if q.matches(&c) {
			kept = append(kept, c)
		}
	}
	slices.SortFunc(kept, order(q.Sort))
	p := Page{Node: node, Total: len(kept), Offset: q.Offset, Limit: q.Limit, Sort: q.Sort}
	from := min(q.Offset, len(kept))
	p.Connections = kept[from:min(from+q.Limit, len(kept))]
	return p
}

// matches reports whether c passes q's filters.
func (q *Query) matches(c *Conn) bool {
	switch {
	case q.User != "" && c.User != q.User:
		return false
	case q.Room != "" && !slices.ContainsFunc(c.Rooms, func(r Room) bool { return r.Room == q.Room }):
		return false
	case q.remoteIP.IsValid():
		return hostOf(c.Remote) == q.remoteIP
	case q.Remote != "":
		return c.Remote == q.Remote
	}
	return true
}

// hostOf is the ip of an ip:port, the zero Addr if it is not one.
func hostOf(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// order is the comparison of sort; ties go to the older connection, then
// the lower id, so pages are stable.
func order(sort string) func(a, b Conn) int {
	var key func(a, b Conn) int
	switch sort {
	case SortQueuedBytes:
		key = func(a, b Conn) int { return cmp.Compare(b.QueuedBytes, a.QueuedBytes) }
	case SortAge:
		key = func(a, b Conn) int { return 0 }
	case SortOldestWait:
		key = func(a, b Conn) int { return cmp.Compare(b.OldestWait, a.OldestWait) }
	default:
		key = ByLag
	}
	return func(a, b Conn) int {
		if c := key(a, b); c != 0 {
			return c
		}
		if c := a.Opened.Compare(b.Opened); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
}

// ByLag orders connections most behind first: by lag, then by oldest
// wait. It is the default sort and the order of a node's slowest
// connections.
func ByLag(a, b Conn) int {
	if c := cmp.Compare(b.Lag, a.Lag); c != 0 {
		return c
	}
	return cmp.Compare(b.OldestWait, a.OldestWait)
}
