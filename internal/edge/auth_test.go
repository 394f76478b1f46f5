package edge

import (
	"strings"
	"testing"
)

func TestUpgradeToken(t *testing.T) {
	for _, tc := range []struct {
		uri, key, value, want string
	}{
		{"/ws", "Authorization", "Bearer abc.def.ghi", "abc.def.ghi"},
		{"/ws", "authorization", "bearer  abc ", "abc"},
		{"/ws?token=q.r.s", "", "", "q.r.s"},
		{"/?x=1&token=a%2Bb", "", "", "a+b"},
		{"/ws?token=q", "Authorization", "Bearer h", "h"}, // the header wins
		{"/ws", "Authorization", "Basic dXNlcjpwYXNz", ""},
		{"/ws?token=%zz", "", "", ""}, // a malformed query gives no token
		{"/ws", "X-Token", "Bearer x", ""},
	} {
		var u upgradeToken
		u.onURI([]byte(tc.uri))
		if tc.key != "" {
			u.onHeader([]byte(tc.key), []byte(tc.value))
		}
		if got := u.token(); got != tc.want {
			t.Errorf("%s %s: %q: token %q, want %q", tc.uri, tc.key, tc.value, got, tc.want)
		}
	}
}

// The token extraction takes any request line and header without panic,
// and only ever returns what the client sent.
func FuzzUpgradeToken(f *testing.F) {
	f.Add("/ws?token=a.b.c", "Authorization", "Bearer x.y.z")
	f.Add("/?token=", "authorization", "bearer")
	f.Add("/?token=%", "Authorization", "Bearer\x00\xff")
	f.Add("?&&==token=token=", "Authorization", " Bearer  ")
	f.Fuzz(func(t *testing.T, uri, key, value string) {
		var u upgradeToken
		u.onURI([]byte(uri))
		u.onHeader([]byte(key), []byte(value))
		tok := u.token()
		if tok != "" && !strings.Contains(value, tok) && !strings.Contains(uri, "token=") {
			t.Fatalf("token %q came from neither %q nor %q", tok, uri, value)
		}
	})
}
