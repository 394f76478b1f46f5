package client

import (
	"errors"

	"github.com/roomcast/roomcast/internal/wire"
)

// ReconnectAtOnce reports whether err, from Read, is a close that asks
// the client to reconnect at once, without its backoff, and resume every
// room with since and epoch (wire.ReconnectAtOnce: 4012, a node
// rebalancing the cluster). Any node will do; behind a load balancer,
// the same URL.
func ReconnectAtOnce(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) && wire.ReconnectAtOnce(ce.Code)
}
