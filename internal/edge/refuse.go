package edge

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/internal/lograte"
	"github.com/roomcast/roomcast/internal/metrics"
)

// DefaultRefusalLogInterval is how often, at most, a refusal of each
// reason is logged.
const DefaultRefusalLogInterval = time.Minute

// refusal is an upgrade refused with an HTTP status, for a reason of
// roomcast_upgrades_refused_total.
type refusal struct {
	reason string // metrics.Refused*
	status int
	text   string // the response's reason phrase: for the client, never secret
}

func (r *refusal) Error() string { return r.text }

// reject is the refusal as gobwas/ws answers it.
func (r *refusal) reject() error {
	return ws.RejectConnectionError(ws.RejectionStatus(r.status), ws.RejectionReason(r.text))
}

var (
	errDraining = &refusal{metrics.RefusedDraining, http.StatusServiceUnavailable, "server is draining"}
	errFull     = &refusal{metrics.RefusedCapacity, http.StatusServiceUnavailable, "server is at its connection limit"}
	errUnauth   = &refusal{metrics.RefusedUnauthenticated, http.StatusServiceUnavailable,
		"too many connections waiting to authenticate; send the token with the upgrade or retry"}
	errUnauthSource = &refusal{metrics.RefusedSource, http.StatusServiceUnavailable,
		"too many connections waiting to authenticate from this address; send the token with the upgrade or retry"}
	errOrigin = &refusal{metrics.RefusedOrigin, http.StatusForbidden, "origin not allowed"}
	errPath   = &refusal{metrics.RefusedBadRequest, http.StatusNotFound, "WebSocket endpoint is / or /ws"}
)

// refusals counts every refused upgrade and logs them at info, at most one
// line per reason per interval, saying how many were held back: the
// operator learns that and why browsers or clients are turned away (a
// dashboard's origin not listed, a full node) without an attacker being
// able to flood the log.
type refusals struct {
	log    *slog.Logger
	counts map[string]prometheus.Counter
	limits map[string]*lograte.Limiter
}

func newRefusals(log *slog.Logger, m *metrics.Metrics, interval time.Duration, now func() time.Time) refusals {
	if interval <= 0 {
		interval = DefaultRefusalLogInterval
	}
	r := refusals{log: log, counts: make(map[string]prometheus.Counter), limits: make(map[string]*lograte.Limiter)}
	for _, reason := range metrics.RefusedReasons() {
		r.counts[reason] = m.Refused.WithLabelValues(reason)
		r.limits[reason] = lograte.New(interval, now)
	}
	return r
}

// refusedRequest is what the log says of a refused request: never its
// query, which may carry a token.
type refusedRequest struct {
	remote string // the socket's peer
	source string // the source it was capped as, when another (X-Forwarded-For)
	origin string
	path   string // without the query
}

// record counts one refusal and logs it unless one of its reason was
// logged within the interval.
func (r refusals) record(reason string, req refusedRequest) {
	ok, heldBack := r.limits[reason].Allow()
	r.counts[reason].Inc() // after Allow: a test that sees the count knows the log's decision is taken
	if !ok {
		return
	}
	attrs := []any{"reason", reason, "remote", req.remote}
	if req.source != "" {
		attrs = append(attrs, "source", req.source)
	}
	if req.path != "" {
		attrs = append(attrs, "path", req.path)
	}
	if req.origin != "" {
		attrs = append(attrs, "origin", req.origin)
	}
	if reason == metrics.RefusedOrigin {
		attrs = append(attrs, "allow_with", allowHint(req.origin))
	}
	attrs = append(attrs, "held_back", heldBack)
	r.log.Info("upgrade refused", attrs...)
}

// allowHint is the setting that would let a refused origin in.
func allowHint(origin string) string {
	if CheckOrigins([]string{origin}) != nil {
		return "none: this Origin is not scheme://host[:port] and cannot be listed"
	}
	return "--allowed-origins " + origin + " (ROOMCAST_ALLOWED_ORIGINS), added to the origins already listed"
}

// failedReason classifies an upgrade that failed other than by a refusal
// of ours: a head that did not come in time, a client that went away
// (not a refusal: ""), or anything else gobwas/ws refused (a bad request).
func failedReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return metrics.RefusedTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ""
	}
	return metrics.RefusedBadRequest
}

// truncate keeps a client's string to what a log line needs.
func truncate(s string) string {
	const limit = 256
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
