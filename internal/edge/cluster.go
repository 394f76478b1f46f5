package edge

import (
	"context"
	"time"

	"github.com/roomcast/roomcast/internal/requester"
	"github.com/roomcast/roomcast/internal/wire"
)

// ClusterViewer returns the cluster as this node sees it (the data of a
// cluster response and of the admin listener's /clusterz), within ctx.
type ClusterViewer func(ctx context.Context) (any, error)

// ClusterWait bounds a cluster request: the nodes that have not answered
// by then are left out. The request is answered on the connection's
// reading goroutine, as a rooms request is, so this is also the longest
// the connection's next messages wait behind it.
const ClusterWait = time.Second

// cluster answers a cluster request: only a token with `admin` may see
// the cluster (its nodes, their connections' remote addresses and users);
// without auth configured, anyone may, as anyone may read every room.
func (ss *session) cluster(req wire.Request) {
	view := ss.srv.opts.Cluster
	switch {
	case !ss.authenticated(req):
		return
	case ss.srv.opts.Auth != nil && !ss.claims.Admin():
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeForbidden, "the cluster view needs the admin permission"))
		return
	case view == nil:
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnavailable, "this node does not show the cluster"))
		return
	}
	// Bounded by the connection too: a client that leaves stops waiting.
	// The value goes on top of the timeout, which then sees
	// closedContext's AfterFunc instead of starting a goroutine.
	ctx, cancel := context.WithTimeout(closedContext{ss.c}, ClusterWait)
	defer cancel()
	v, err := view(requester.With(ctx, ss.c))
	if err != nil {
		if !ss.c.Closing() {
			ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnavailable, "%s; retry", err))
		}
		return
	}
	ss.send(wire.TypeResponse, wire.ResponseFrame(req.Event, req.ID, v))
}
