package natsembed

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// apply sets the users and their permissions on the server's options.
func (p *Protection) apply(sopts *server.Options) error {
	if p.LiveSubjects == "" || p.RoomSubjects == "" || p.StateSubjects == "" || p.ClusterSubjects == "" {
		return errors.New("embedded NATS: protection needs the live, room, state and cluster subjects")
	}
	if !nkeys.IsValidPublicUserKey(p.EdgeKey) {
		return errors.New("embedded NATS: protection needs the edge's NKey (a user public key)")
	}
	for _, k := range p.WorkerNKeys {
		if !nkeys.IsValidPublicUserKey(k) {
			return fmt.Errorf("embedded NATS: worker NKey %q is not a user public key (it starts with U)", k)
		}
	}
	if p.WorkerPassword != "" && p.WorkerUser == "" {
		return errors.New("embedded NATS: a worker password needs a user name")
	}
	if p.WorkerUser == AnonymousUser {
		return fmt.Errorf("embedded NATS: the worker user may not be called %q (that is the name of the anonymous user)", AnonymousUser)
	}

	trusted := []string{p.LiveSubjects, EdgeInboxPrefix + ".>", "$JS.EVENT.>"}
	edge := &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: trusted}}
	sopts.Nkeys = []*server.NkeyUser{{Nkey: p.EdgeKey, Permissions: edge}}

	// Only edges write the state and see the cluster: a worker's status
	// would steer the rebalancing, and summaries name users.
	worker := p.workerPermissions(append(trusted, p.StateSubjects, p.ClusterSubjects))
	for _, k := range p.WorkerNKeys {
		sopts.Nkeys = append(sopts.Nkeys, &server.NkeyUser{Nkey: k, Permissions: worker})
	}
	if p.WorkerPassword != "" {
		sopts.Users = append(sopts.Users, &server.User{Username: p.WorkerUser, Password: p.WorkerPassword, Permissions: worker})
	}
	if !p.WorkersAuthenticate() || p.AllowAnonymous {
		sopts.Users = append(sopts.Users, &server.User{Username: AnonymousUser, Permissions: worker})
		sopts.NoAuthUser = AnonymousUser
	}
	return nil
}

// workerPermissions are natsconf/accounts.conf's publisher's: publish the
// room subjects, subscribe to _INBOX.> for JetStream's acknowledgements
// (which the server sends itself, so no $JS.> publish is needed). The
// denials are implied by the allow lists; they are spelled out so that
// widening an allow list later cannot reopen a trusted subject.
func (p *Protection) workerPermissions(trusted []string) *server.Permissions {
	deny := slices.Concat(trusted, []string{"$JS.>"})
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{p.RoomSubjects}, Deny: deny},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}, Deny: deny},
	}
}
