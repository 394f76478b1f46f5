package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// A node with no room and no connection lists none as an empty array, as
// docs/protocol.md section 7 shows it: a null would break a reader that
// iterates it (jq '.rooms[]').
func TestConnzAndRoomzListNothingAsEmptyArrays(t *testing.T) {
	srv := startNode(t, nil, nil)
	base := "http://" + srv.AdminAddr()
	for path, want := range map[string]string{"/roomz": `"rooms":[]`, "/connz": `"connections":[]`} {
		code, body := adminGet(t, http.DefaultClient, base+path, "")
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s on an empty node: %d %s, want 200 with %s", path, code, body, want)
		}
	}
}
