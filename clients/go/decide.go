package roomcast

import (
	"context"
	"crypto/tls"
	"errors"
	"time"
)

// next is what the client does after a connection or an attempt ended.
type next struct {
	stop   error // stop for good with this error
	atOnce bool  // reconnect at once (1001, 4012), not after the backoff
}

// decide applies the contract's table of close codes and other ends
// (docs/protocol.md section 3, "What a client does").
func (c *Client) decide(ctx context.Context, end sessionEnd) next {
	if end.stop != nil {
		return next{stop: end.stop}
	}
	var untrusted *tls.CertificateVerificationError
	if errors.As(end.err, &untrusted) {
		return next{stop: &StopError{Reason: "the node's certificate is not trusted: " + end.text, err: end.err}}
	}
	switch end.code {
	case 1001, 4012: // draining, rebalance: the node is healthy, nothing is lost
		return next{atOnce: true}
	case 4001, 1008: // the token expired, or was refused
		return c.renewToken(ctx, end)
	case 1002, 1003, 1007, 1009, 4029: // the node refused what this client sent, and would again
		return next{stop: &StopError{Code: end.code, Reason: end.reason}}
	}
	return next{}
}

// renewToken asks the refresh callback for a token to reconnect with,
// after the node refused or expired the current one; without a new one
// the client stops with the close's reason.
func (c *Client) renewToken(ctx context.Context, end sessionEnd) next {
	stop := &StopError{Code: end.code, Reason: end.reason}
	if c.opts.Refresh == nil {
		return next{stop: stop}
	}
	tok, err := c.opts.Refresh(ctx)
	switch {
	case ctx.Err() != nil:
		return next{stop: ErrClosed}
	case err != nil:
		c.notice(ctx, Notice{Kind: TokenRefreshFailed, Text: "token refresh: " + err.Error()})
		return next{stop: stop}
	case tok == "" || tok == c.token:
		c.notice(ctx, Notice{Kind: TokenRefreshFailed, Text: "token refresh: the refresh callback gave no new token"})
		return next{stop: stop}
	}
	c.token, c.tokenAt = tok, time.Now()
	return next{}
}
