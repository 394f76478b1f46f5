package check

import (
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	got, err := ParseList(strings.NewReader("# services\nmahavishnu 8690\n\nremote 10.0.0.5:9000 # comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{{"mahavishnu", "127.0.0.1:8690", WebSocket}, {"remote", "10.0.0.5:9000", WebSocket}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"lonely\n", "a b c\n", "x host:port\n", "y =1\n"} {
		if _, err := ParseList(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: err %v, want one naming line 1", bad, err)
		}
	}
}
