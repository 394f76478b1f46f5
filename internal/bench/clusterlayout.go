package bench

// The cluster scenario's rooms (issue 23), as a pool system has them: a
// few pool-wide rooms that a large share of the connections follow, and
// many small ones (a workflow's watchers). At 95,000 connections: 5 rooms
// of 5,000 members and 7,000 of 10. Every connection also follows one
// room all of them share, for the latency of an event fanned out to all.

// Defaults of the cluster layout.
const (
	clusterBigRooms  = 5
	clusterBigShare  = 5.0 / 19 // of the connections, over the big rooms: 25,000 of 95,000
	clusterSmallSize = 10
)

// ClusterLayout spreads Conns connections (numbered 0 to Conns-1 over
// the whole cluster) over rooms: the first BigRooms×BigSize in BigRooms
// rooms of BigSize consecutive connections, the others in rooms of
// SmallSize (the last may be smaller). Consecutive connections go to
// different generators and so to different edges: each room's members
// are spread over all of them.
type ClusterLayout struct {
	Conns     int `json:"conns"`
	BigRooms  int `json:"big_rooms"`
	BigSize   int `json:"big_size"`
	SmallSize int `json:"small_size"`
}

// NewClusterLayout is the default layout of conns connections.
func NewClusterLayout(conns int) ClusterLayout {
	bigSize := max(1, int(float64(conns)*clusterBigShare)/clusterBigRooms)
	return ClusterLayout{Conns: conns, BigRooms: clusterBigRooms, BigSize: bigSize, SmallSize: clusterSmallSize}
}

// inBig is how many connections are in the big rooms.
func (l ClusterLayout) inBig() int { return min(l.BigRooms*l.BigSize, l.Conns) }

// Room is the room index of connection g: big rooms first.
func (l ClusterLayout) Room(g int) int {
	if big := l.inBig(); g >= big {
		return l.BigRooms + (g-big)/l.SmallSize
	}
	return g / l.BigSize
}

// Rooms is the number of rooms, the shared one (All) not counted.
func (l ClusterLayout) Rooms() int {
	rest := l.Conns - l.inBig()
	return l.BigRooms + (rest+l.SmallSize-1)/l.SmallSize
}

// All is the index of the room every connection follows.
func (l ClusterLayout) All() int { return l.Rooms() }

// Members is how many connections follow room i (All: every one).
func (l ClusterLayout) Members(i int) int {
	switch {
	case i == l.All():
		return l.Conns
	case i < l.BigRooms:
		return max(0, min(l.BigSize, l.inBig()-i*l.BigSize))
	case i < l.Rooms():
		first := l.inBig() + (i-l.BigRooms)*l.SmallSize
		return min(l.SmallSize, l.Conns-first)
	}
	return 0
}

// PublishOrder is the rooms in the order the rate steps publish to them:
// each room once a round, the big rooms spread evenly over the round, so
// that their fan-outs (thousands of deliveries each) do not come together
// and a step shorter than a round still sends some of each kind.
func (l ClusterLayout) PublishOrder() []int {
	rooms := l.Rooms()
	order := make([]int, 0, rooms)
	gap := (rooms - l.BigRooms) / max(l.BigRooms, 1)
	small := l.BigRooms
	for big := range l.BigRooms {
		order = append(order, big)
		for j := 0; j < gap && small < rooms; j++ {
			order = append(order, small)
			small++
		}
	}
	for ; small < rooms; small++ {
		order = append(order, small)
	}
	return order
}

// share is how many of the connections generator k of n holds: those
// numbered k, k+n, k+2n, ...
func share(conns, k, n int) int { return (conns - k + n - 1) / n }
