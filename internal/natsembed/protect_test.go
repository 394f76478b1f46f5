package natsembed

import (
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

func userKey(t *testing.T) (pub, seed string) {
	t.Helper()
	k, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := k.PublicKey()
	s, _ := k.Seed()
	return p, string(s)
}

func protection(t *testing.T) *Protection {
	edge, _ := userKey(t)
	return &Protection{LiveSubjects: "rc.live.>", RoomSubjects: "rc.rooms.>", StateSubjects: "rc.state.>", ClusterSubjects: "rc.cluster.>", EdgeKey: edge}
}

// A protection that cannot be what the operator meant is refused before
// the server starts, never half applied.
func TestBadProtectionsAreRefused(t *testing.T) {
	worker, seed := userKey(t)
	for name, tc := range map[string]struct {
		edit func(*Protection)
		says string
	}{
		"no live subjects":          {func(p *Protection) { p.LiveSubjects = "" }, "subjects"},
		"no cluster subjects":       {func(p *Protection) { p.ClusterSubjects = "" }, "subjects"},
		"no edge key":               {func(p *Protection) { p.EdgeKey = "" }, "edge's NKey"},
		"a seed as the edge key":    {func(p *Protection) { p.EdgeKey = seed }, "edge's NKey"},
		"a seed as a worker key":    {func(p *Protection) { p.WorkerNKeys = []string{worker, seed} }, "worker NKey"},
		"a password without user":   {func(p *Protection) { p.WorkerPassword = "pw" }, "user name"},
		"the anonymous user's name": {func(p *Protection) { p.WorkerUser, p.WorkerPassword = AnonymousUser, "pw" }, "anonymous"},
	} {
		p := protection(t)
		tc.edit(p)
		err := p.apply(&server.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.says)
		}
	}
}

// Who gets in as a worker: anyone without credentials when none are
// configured; with credentials, only their holders, unless anonymous
// workers are allowed besides. Every worker has the same narrow rights.
func TestWorkersAndTheirRights(t *testing.T) {
	worker, _ := userKey(t)
	for name, tc := range map[string]struct {
		edit      func(*Protection)
		anonymous bool
		users     int // password users, the anonymous one included
		nkeys     int // the edge's included
	}{
		"none configured":            {func(*Protection) {}, true, 1, 1},
		"a password":                 {func(p *Protection) { p.WorkerUser, p.WorkerPassword = "publisher", "pw" }, false, 1, 1},
		"an nkey":                    {func(p *Protection) { p.WorkerNKeys = []string{worker} }, false, 0, 2},
		"an nkey, anonymous allowed": {func(p *Protection) { p.WorkerNKeys, p.AllowAnonymous = []string{worker}, true }, true, 1, 2},
		"both, anonymous not allowed": {func(p *Protection) {
			p.WorkerUser, p.WorkerPassword, p.WorkerNKeys = "publisher", "pw", []string{worker}
		}, false, 1, 2},
	} {
		p := protection(t)
		tc.edit(p)
		var o server.Options
		if err := p.apply(&o); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if (o.NoAuthUser != "") != tc.anonymous || len(o.Users) != tc.users || len(o.Nkeys) != tc.nkeys {
			t.Fatalf("%s: no-auth user %q, %d users, %d nkeys; want anonymous %v, %d, %d", name, o.NoAuthUser, len(o.Users), len(o.Nkeys), tc.anonymous, tc.users, tc.nkeys)
		}
		var perms []*server.Permissions
		for _, u := range o.Users {
			perms = append(perms, u.Permissions)
		}
		for _, n := range o.Nkeys[1:] {
			perms = append(perms, n.Permissions)
		}
		for _, got := range perms {
			if strings.Join(got.Publish.Allow, ",") != "rc.rooms.>" || strings.Join(got.Subscribe.Allow, ",") != "_INBOX.>" {
				t.Fatalf("%s: a worker may publish %v and subscribe %v", name, got.Publish.Allow, got.Subscribe.Allow)
			}
			// Denied explicitly, so that a wider allow list later cannot
			// let a worker forge a node's status or the state.
			for _, trusted := range []string{"rc.live.>", "rc.state.>", "rc.cluster.>"} {
				if !slices.Contains(got.Publish.Deny, trusted) || !slices.Contains(got.Subscribe.Deny, trusted) {
					t.Fatalf("%s: a worker's denials %v / %v lack %s", name, got.Publish.Deny, got.Subscribe.Deny, trusted)
				}
			}
		}
	}
}
