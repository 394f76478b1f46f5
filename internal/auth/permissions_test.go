package auth

import "testing"

func TestMayRead(t *testing.T) {
	cases := []struct {
		name     string
		perms    []string
		kind, id string
		want     bool
	}{
		{"admin", []string{"admin"}, "pool", "p1", true},
		{"kind read", []string{"pool:read"}, "pool", "p1", true},
		{"room read", []string{"pool:read:p1"}, "pool", "p1", true},
		{"room read, other room", []string{"pool:read:p1"}, "pool", "p2", false},
		{"room read is not a prefix", []string{"pool:read:p1"}, "pool", "p10", false},
		{"other kind", []string{"market:read"}, "pool", "p1", false},
		{"kind prefix is not the kind", []string{"poo:read"}, "pool", "p1", false},
		{"kind extension is not the kind", []string{"pool:read"}, "poolx", "p1", false},
		{"write is not read", []string{"pool:write"}, "pool", "p1", false},
		{"case matters", []string{"Pool:read", "ADMIN"}, "pool", "p1", false},
		{"wildcards are not special", []string{"*:read", "pool:read:*"}, "pool", "p1", false},
		{"bare kind", []string{"pool"}, "pool", "p1", false},
		{"trailing colon", []string{"pool:read:"}, "pool", "p1", false},
		{"one of many", []string{"x:read", "pool:read:p1"}, "pool", "p1", true},
		{"empty", nil, "pool", "p1", false},
		{"empty kind never matches", []string{":read"}, "", "p1", false},
		{"empty id never matches", []string{"pool:read:"}, "pool", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Claims{Permissions: tc.perms}
			if got := c.MayRead(tc.kind, tc.id); got != tc.want {
				t.Errorf("MayRead(%q, %q) with %q = %v, want %v", tc.kind, tc.id, tc.perms, got, tc.want)
			}
		})
	}
	var nilClaims *Claims
	if nilClaims.MayRead("pool", "p1") {
		t.Error("nil Claims may read")
	}
}

// CheckPermission accepts exactly the shapes MayRead can match, with
// kinds and ids as room names allow them.
func TestCheckPermission(t *testing.T) {
	for _, p := range []string{"admin", "pool:read", "workflow:read:w1", "a_b-c:read:X-y_9"} {
		if err := CheckPermission(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "bogus", "Admin", "pool", "pool:write", "pool:read:", ":read", "Pool:read",
		"pool:read:a.b", "pool:read:a:b", "pool:reads", "pool:read:*"} {
		if err := CheckPermission(p); err == nil {
			t.Errorf("%q: accepted", p)
		}
	}
}
