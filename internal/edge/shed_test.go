package edge

import "testing"

// pickRandom picks uniformly: over 20,000 picks of 1 among 10, each is
// picked 2,000 times give or take 5 standard deviations (about 212); and
// items take refuses (closing already) are skipped, not counted.
func TestPickRandomIsUniform(t *testing.T) {
	const items, rounds = 10, 20000
	counts := make([]int, items)
	for range rounds {
		xs := make([]int, items)
		for i := range xs {
			xs[i] = i
		}
		if got := pickRandom(xs, 1, func(x int) bool { counts[x]++; return true }); got != 1 {
			t.Fatalf("picked %d, want 1", got)
		}
	}
	for i, c := range counts {
		if c < rounds/items-212 || c > rounds/items+212 {
			t.Fatalf("item %d picked %d times of %d: not uniform (%v)", i, c, rounds, counts)
		}
	}
	xs := []int{0, 1, 2, 3, 4, 5}
	seen := map[int]bool{}
	got := pickRandom(xs, 4, func(x int) bool { seen[x] = true; return x%2 == 0 })
	if got != 3 || len(seen) != 6 {
		t.Fatalf("with 3 takeable of 6, asked for 4: took %d after offering %d", got, len(seen))
	}
}
