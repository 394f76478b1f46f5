// Package requester names who a request is made for: one identity per
// client connection, carried by the request's context. The edge sets it
// and the bus reads it (to share stream reads fairly and pace them), so
// neither has to import the other for it.
package requester

import "context"

type key struct{}

// With returns ctx carrying id as who asks for the work done under it: a
// comparable value, one per client connection (its pointer, say).
func With(ctx context.Context, id any) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// Of is the requester of ctx, nil when none was set (the node's own work).
func Of(ctx context.Context) any { return ctx.Value(key{}) }
