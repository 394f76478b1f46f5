package connz

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseQueryDefaults(t *testing.T) {
	q, err := ParseQuery(url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Sort != SortLag || q.Limit != DefaultLimit || q.Offset != 0 || q.Room != "" || q.User != "" || q.Remote != "" {
		t.Fatalf("defaults %+v, want sort lag, limit %d, offset 0, no filter", q, DefaultLimit)
	}
}

func TestParseQueryRefusesBadInput(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"sort=fast", `sort "fast"`},
		{"limit=0", "limit"},
		{"limit=1025", "limit"},
		{"limit=x", "limit"},
		{"offset=-1", "offset"},
		{"room=nocolon", `room "nocolon"`},
		{"room=", `room ""`},
		{"user=", "user is empty"},
		{"remote=host.example:80", "remote"},
		{"remote=1.2.3.4:99999", "remote"},
		{"token=abc", `unknown parameter "token"`},
		{"sort=lag&sort=age", "given 2 times"},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseQuery(v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one that says %q", tc.query, err, tc.want)
		}
	}
}

func TestParseQueryAcceptsEachParameter(t *testing.T) {
	v, _ := url.ParseQuery("sort=oldest_wait&room=pool:p1&user=u1&remote=127.0.0.1:5000&offset=3&limit=1024")
	q, err := ParseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	if q.Sort != SortOldestWait || q.Room != "pool:p1" || q.User != "u1" || q.Remote != "127.0.0.1:5000" || q.Offset != 3 || q.Limit != 1024 {
		t.Fatalf("parsed %+v", q)
	}
}

// sample is five connections: lag, bytes, age and waits all in
// different orders.
func sample() []Conn {
	t0 := time.Unix(1000, 0)
	return []Conn{
		{ID: 1, Remote: "10.0.0.1:100", User: "ann", Opened: t0.Add(3 * time.Second), Lag: 5, QueuedBytes: 10, OldestWait: 0.5, Rooms: []Room{{Room: "pool:p1"}}},
		{ID: 2, Remote: "10.0.0.1:200", User: "bob", Opened: t0.Add(1 * time.Second), Lag: 50, QueuedBytes: 5, OldestWait: 0.1, Rooms: []Room{{Room: "pool:p2"}}},
		{ID: 3, Remote: "10.0.0.2:100", User: "ann", Opened: t0.Add(2 * time.Second), Lag: 0, QueuedBytes: 900, OldestWait: 2, Rooms: []Room{{Room: "pool:p1"}, {Room: "pool:p2"}}},
		{ID: 4, Remote: "[::1]:300", Opened: t0, Lag: 5, QueuedBytes: 1, OldestWait: 3},
		{ID: 5, Remote: "10.0.0.3:100", User: "cy", Opened: t0.Add(4 * time.Second), Lag: 7},
	}
}

func ids(p Page) []uint64 {
	var out []uint64
	for _, c := range p.Connections {
		out = append(out, c.ID)
	}
	return out
}

func TestApplySortsFiltersAndPages(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  []uint64
		total int
	}{
		{"", []uint64{2, 5, 4, 1, 3}, 5}, // lag; ties: more oldest wait first
		{"sort=queued_bytes", []uint64{3, 1, 2, 4, 5}, 5},
		{"sort=age", []uint64{4, 2, 3, 1, 5}, 5},
		{"sort=oldest_wait", []uint64{4, 3, 1, 2, 5}, 5},
		{"room=pool:p1", []uint64{1, 3}, 2},
		{"user=ann&sort=age", []uint64{3, 1}, 2},
		{"remote=10.0.0.1", []uint64{2, 1}, 2},
		{"remote=10.0.0.1:100", []uint64{1}, 1},
		{"remote=::1", []uint64{4}, 1},
		{"remote=[::1]:300", []uint64{4}, 1},
		{"limit=2", []uint64{2, 5}, 5},
		{"limit=2&offset=2", []uint64{4, 1}, 5},
		{"offset=4", []uint64{3}, 5},
		{"offset=9", nil, 5},
		{"user=nobody", nil, 0},
	} {
		v, _ := url.ParseQuery(tc.query)
		q, err := ParseQuery(v)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		p := Apply(sample(), q, "n1")
		if got := ids(p); !equal(got, tc.want) || p.Total != tc.total || p.Node != "n1" || p.Sort != q.Sort {
			t.Errorf("%q: ids %v total %d (%+v), want %v total %d", tc.query, got, p.Total, p, tc.want, tc.total)
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
