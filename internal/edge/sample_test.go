package edge

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/conn"
)

// keepTop keeps, of any sequence of backlogs, exactly the n that a full
// sort in connz.ByLag's order puts first.
func TestKeepTopMatchesAFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n := rng.IntN(12)
		all := make([]conn.Backlog, rng.IntN(60))
		for i := range all {
			all[i] = conn.Backlog{
				Events:     rng.IntN(5),
				OldestWait: time.Duration(rng.IntN(4)) * time.Millisecond,
			}
		}
		top := make([]ranked, 0, n+1)
		for _, b := range all {
			top = keepTop(top, ranked{b: b}, n)
		}
		want := slices.Clone(all)
		slices.SortStableFunc(want, func(a, b conn.Backlog) int {
			switch {
			case moreBehind(a, b):
				return -1
			case moreBehind(b, a):
				return 1
			}
			return 0
		})
		want = want[:min(n, len(want))]
		got := make([]conn.Backlog, len(top))
		for i, r := range top {
			got[i] = r.b
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d, n %d: kept %v, want %v", round, n, got, want)
		}
	}
}

func TestMoreBehindOrdersByEventsThenWait(t *testing.T) {
	a := conn.Backlog{Events: 3, OldestWait: time.Millisecond}
	b := conn.Backlog{Events: 2, OldestWait: time.Second}
	c := conn.Backlog{Events: 2, OldestWait: time.Millisecond}
	if !moreBehind(a, b) || !moreBehind(b, c) || moreBehind(c, b) || moreBehind(c, c) {
		t.Fatal("moreBehind does not order by events, then by the oldest wait")
	}
}
