package edge

import (
	"bytes"
	"net/url"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wheel"
	"github.com/roomcast/roomcast/internal/wire"
)

// Verifier checks tokens (auth.Verifier does).
type Verifier interface {
	Verify(token string) (*auth.Claims, error)
}

// expiryGrace is how long past its token's exp a connection may stay open
// for the client's refresh to arrive before it is closed with 4001.
const expiryGrace = 5 * time.Second

// upgradeToken takes the token of an upgrade request: the Authorization
// header's bearer token, else the token query parameter (browsers cannot
// set headers).
type upgradeToken struct {
	header, query string
}

func (u *upgradeToken) onURI(uri []byte) {
	_, q, ok := bytes.Cut(uri, []byte("?"))
	if !ok {
		return
	}
	if v, err := url.ParseQuery(string(q)); err == nil {
		u.query = v.Get("token")
	}
}

func (u *upgradeToken) onHeader(key, value []byte) {
	if !bytes.EqualFold(key, []byte("Authorization")) {
		return
	}
	if scheme, tok, ok := bytes.Cut(value, []byte(" ")); ok && bytes.EqualFold(scheme, []byte("Bearer")) {
		u.header = string(bytes.TrimSpace(tok))
	}
}

// tokenSource names where the upgrade's token came from, for the log:
// never the token.
func tokenSource(u upgradeToken) string {
	switch {
	case u.header != "":
		return "header"
	case u.query != "":
		return "query"
	}
	return "none"
}

func (u *upgradeToken) token() string {
	if u.header != "" {
		return u.header
	}
	return u.query
}

// verdict is a token checked: its claims, or why it was refused.
type verdict struct {
	claims *auth.Claims
	err    error
}

func newVerdict(v Verifier, token string) *verdict {
	claims, err := v.Verify(token)
	return &verdict{claims: claims, err: err}
}

// startAuth begins a session's authentication: with the upgrade's token,
// checked during the upgrade (v), at once; without one, the client has the
// auth timeout to send it.
func (ss *session) startAuth(v *verdict) {
	if ss.srv.opts.Auth == nil {
		return // anonymous: every room readable (loopback or opted in)
	}
	if v != nil {
		ss.applyAuth(v, "", "") // a refused token closes with 1008
		return
	}
	ss.authClose.set(ss, time.Now().Add(ss.srv.opts.AuthTimeout), false)
}

// authRequest handles an auth request: the first token, or a refresh.
func (ss *session) authRequest(req wire.Request) {
	if ss.srv.opts.Auth == nil {
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeBadRequest, "authentication is not enabled on this server"))
		return
	}
	if req.Token == "" {
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeBadRequest, "auth needs data.token"))
		return
	}
	ss.applyAuth(newVerdict(ss.srv.opts.Auth, req.Token), req.Event, req.ID)
}

// applyAuth makes a checked token the session's. A first token that was
// refused closes the connection with 1008; a refresh that was refused is
// answered with UNAUTHENTICATED (FORBIDDEN when the token is valid but for
// another user) and the token in force stays until it expires. A token
// from an auth request is answered.
func (ss *session) applyAuth(v *verdict, event, id string) {
	claims, err := v.claims, v.err
	if err != nil {
		reason := auth.Reason(err)
		ss.srv.m.AuthFailures.WithLabelValues(reason).Inc()
		ss.srv.log.Info("token refused", "conn", ss.id, "reason", reason)
		if ss.claims == nil {
			ss.c.Close(wire.ClosePolicy, "authentication failed: "+reason)
			return
		}
		ss.fail(event, id, wire.Errorf(wire.CodeUnauthenticated, "token refused: %s", reason))
		return
	}
	if ss.claims != nil && claims.UserID != ss.claims.UserID {
		// A refresh renews the bearer's token; it does not log another
		// user in on an open connection, which would carry the first
		// user's subscriptions and history over to the second. The token
		// in force, its identity and its expiry stay.
		ss.srv.m.AuthFailures.WithLabelValues(metrics.AuthUserMismatch).Inc()
		ss.srv.log.Info("token refused", "conn", ss.id, "reason", metrics.AuthUserMismatch, "user", ss.claims.UserID, "token_user", claims.UserID)
		ss.fail(event, id, wire.Errorf(wire.CodeForbidden, "the token is for another user than the connection's; open a new connection to change users"))
		return
	}
	ss.srv.log.Info("connection authenticated", "conn", ss.id, "user", claims.UserID, "expires_at", claims.ExpiresAt, "refresh", ss.claims != nil)
	if ss.claims == nil {
		ss.srv.settleAuth(ss) // a connection as any other from now on
	}
	ss.mu.Lock() // Connections reads the user from another goroutine
	ss.claims = claims
	ss.mu.Unlock()
	ss.authClose.set(ss, claims.ExpiresAt.Add(expiryGrace), true)
	if id != "" || event != "" {
		ss.send(wire.TypeResponse, wire.ResponseFrame(event, id, wire.AuthResult{
			Status: "authenticated", UserID: claims.UserID, ExpiresAt: claims.ExpiresAt.UTC().Format(time.RFC3339),
		}))
	}
	ss.dropForbidden()
}

// dropForbidden leaves the rooms the session's token no longer allows,
// telling the client for each.
func (ss *session) dropForbidden() {
	for i := len(ss.subs) - 1; i >= 0; i-- {
		r := ss.subs[i]
		if ss.mayRead(r) {
			continue
		}
		ss.leave(r)
		e := wire.Errorf(wire.CodeForbidden, "the new token does not allow %s; unsubscribed", r)
		ss.sendError(e, wire.RoomErrorFrame(wire.EventSubscribe, r.String(), e))
	}
}

// authorized reports whether the session may read r, answering the
// request with an error when not.
func (ss *session) authorized(req wire.Request) bool {
	switch {
	case !ss.authenticated(req):
		return false
	case !ss.mayRead(req.Room):
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeForbidden, "not authorized to subscribe to %s", req.Room))
		return false
	}
	return true
}

// authenticated reports whether the session holds a token in force (or
// needs none), answering the request with an error when not.
func (ss *session) authenticated(req wire.Request) bool {
	switch {
	case ss.srv.opts.Auth == nil:
		return true
	case ss.claims == nil:
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnauthenticated, "send an auth request with a token first"))
		return false
	case time.Now().After(ss.claims.ExpiresAt):
		// In the grace before the 4001 close: what is subscribed stays
		// until then, nothing new is opened or listed.
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnauthenticated, "the token has expired; refresh it with an auth request"))
		return false
	}
	return true
}

// mayRead reports whether the session's token allows room r: the one
// check behind subscribe, a refresh's drop of rooms and the room list.
func (ss *session) mayRead(r wire.Room) bool {
	return ss.srv.opts.Auth == nil || ss.claims.MayRead(r.Kind(), r.ID())
}

// authDeadline is when a session is closed for want of a valid token: no
// token within the auth timeout (1008), or the token in force expired
// (4001). Its timer is on the node's wheel, not a runtime timer per
// connection; a refresh only moves the deadline, and the timer, when it
// fires, finds the deadline moved and waits again.
type authDeadline struct {
	mu      sync.Mutex
	due     time.Time // zero: none
	expired bool      // a token was taken: its expiry, not its absence
	timer   *wheel.Timer
}

// set makes the session close at due; expired says why.
func (d *authDeadline) set(ss *session, due time.Time, expired bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer == nil {
		d.timer = ss.srv.connOpts.Wheel.NewTimer(func(now time.Time) time.Time { return d.fire(ss, now) })
	}
	d.due, d.expired = due, expired
	d.timer.Schedule(due)
}

// stop cancels the deadline: the connection has closed.
func (d *authDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.due = time.Time{}
	if d.timer != nil {
		d.timer.Stop()
	}
}

// fire is the timer's function, on the wheel's goroutine.
func (d *authDeadline) fire(ss *session, now time.Time) time.Time {
	d.mu.Lock()
	due, expired := d.due, d.expired
	if !due.IsZero() && !now.Before(due) {
		d.due = time.Time{}
	}
	d.mu.Unlock()
	switch {
	case due.IsZero():
		return time.Time{}
	case now.Before(due):
		return due // a refresh moved it
	case expired:
		// What is queued (a refresh's response) goes out first: a token
		// taken within the leeway past its exp is already due.
		ss.c.CloseAfterFlush(wire.CloseTokenExpired, "token expired")
	default:
		ss.c.Close(wire.ClosePolicy, "no token within the auth timeout")
	}
	return time.Time{}
}
