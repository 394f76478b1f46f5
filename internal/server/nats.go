package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/edge"
	"github.com/roomcast/roomcast/internal/natsembed"
	"github.com/roomcast/roomcast/internal/room"
)

// connectNATS starts the embedded server or dials the configured cluster.
// Either way the connection reconnects forever; each reconnection triggers a
// resync of every room, so events published while it was down reach clients.
func (s *Server) connectNATS(ctx context.Context) error {
	opts := []nats.Option{
		nats.Name("roomcast " + s.cfg.ServerName),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix),
		nats.PingInterval(natsPingInterval),
		nats.MaxPingsOutstanding(natsMaxPingsOut),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.m.NATSConnected.Set(0)
			s.hooks.disconnected()
			if err == nil {
				return // our own close at shutdown
			}
			s.log.Warn("NATS disconnected; new subscriptions get UNAVAILABLE until it is back", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.m.NATSConnected.Set(1)
			s.m.Reconnects.Inc()
			s.log.Info("NATS reconnected; resyncing rooms", "url", nc.ConnectedUrlRedacted())
			s.hooks.reconnected()
		}),
		nats.ClosedHandler(func(*nats.Conn) { s.m.NATSConnected.Set(0) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			s.log.Warn("NATS error", "subject", subj, "err", err)
			s.hooks.asyncError(sub, err)
		}),
	}
	if s.cfg.Embedded() {
		if err := s.cfg.CheckDataDir(); err != nil {
			return err
		}
		// The node's own identity on its NATS; the seed never leaves the
		// process.
		key, err := nkeys.CreateUser()
		if err != nil {
			return fmt.Errorf("embedded NATS: edge key: %w", err)
		}
		pub, _ := key.PublicKey()
		subj := bus.Subjects{Prefix: s.cfg.SubjectPrefix}
		w := s.cfg.NATSWorkers
		if host, _, _ := net.SplitHostPort(s.cfg.NATSListen); w.Password != "" && !edge.IsLoopbackHost(host) {
			// The embedded server speaks no TLS to workers; an NKey
			// proves itself by signing, and no secret crosses.
			s.log.Warn("pool workers send their password to the embedded NATS in clear; prefer NKeys (--nats-publisher-nkey), or a private network", "nats_listen", s.cfg.NATSListen)
		}
		ns, err := natsembed.Start(natsembed.Options{
			Listen: s.cfg.NATSListen, DataDir: s.cfg.ResolvedDataDir(), ServerName: s.cfg.ServerName,
			MaxPayload: int32(s.cfg.MaxPayload) + 4096, Logger: s.log,
			SyncAlways: s.cfg.NATSSync.Always, SyncInterval: s.cfg.NATSSync.Interval,
			Protect: &natsembed.Protection{
				LiveSubjects: subj.AllLive(), RoomSubjects: subj.AllRooms(), StateSubjects: subj.AllState(),
				ClusterSubjects: cluster.Subjects(s.cfg.SubjectPrefix), EdgeKey: pub,
				WorkerUser: w.User, WorkerPassword: w.Password, WorkerNKeys: w.NKeys,
				AllowAnonymous: w.AllowAnonymous,
			},
		})
		if err != nil {
			return err
		}
		s.ns = ns
		opts = append(opts, nats.Nkey(pub, key.Sign))
		if s.nc, err = natsembed.Connect(ns, opts...); err != nil {
			return err
		}
		s.m.NATSConnected.Set(1)
		return nil
	}
	security, err := s.cfg.NATSAuth.Options()
	if err != nil {
		return err
	}
	if a := s.cfg.NATSAuth; (a.Password != "" || a.Token != "") && a.TLSCA == "" && !allLocal(s.cfg.NATS) {
		s.log.Warn("the NATS password or token goes over the network without TLS; set --nats-tls-ca (or use tls:// URLs)")
	}
	return s.dialNATS(ctx, append(opts, security...))
}

// A NATS server that stops answering without closing the connection (a
// frozen process, a host or a network gone silent) is noticed only by the
// pongs it no longer sends: after natsMaxPingsOut pings unanswered, one
// every natsPingInterval, the connection is stale and the node moves to
// another server, within 10 to 15 s. nats.go's defaults (2 minutes, 2)
// kept an edge on such a connection for 6 minutes, not ready and its
// clients without events, while the rest of the cluster served.
const (
	natsPingInterval = 5 * time.Second
	natsMaxPingsOut  = 2
)

// dialNATS connects to an external NATS, retrying with backoff while it is
// unreachable, so a node started before its NATS comes up waits for it.
func (s *Server) dialNATS(ctx context.Context, opts []nats.Option) error {
	urls := strings.Join(s.cfg.NATS, ",")
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(urls, opts...)
		if err == nil {
			s.nc = nc
			s.m.NATSConnected.Set(1)
			return nil
		}
		if errors.As(err, new(*url.Error)) {
			// It will never parse, and its text would quote the URL with
			// any password in it.
			return fmt.Errorf("NATS URLs %s do not parse: check for unescaped characters in a user or password", redactURLs(s.cfg.NATS))
		}
		delay := reconnectDelay(attempt)
		s.log.Warn("NATS unreachable; retrying", "urls", redactURLs(s.cfg.NATS), "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to NATS %s: %w", redactURLs(s.cfg.NATS), err)
		case <-time.After(delay):
		}
	}
}

// reconnectDelay backs off from 250 ms to 5 s.
func reconnectDelay(attempts int) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < attempts && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// allLocal reports whether every URL is TLS or points at loopback, where
// credentials do not cross a network in clear.
func allLocal(urls []string) bool {
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			return false
		}
		if pu.Scheme == "tls" {
			continue
		}
		host := pu.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// redactURLs hides credentials in NATS URLs before they are logged.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				u = u[:scheme+3] + "REDACTED" + u[at:]
			}
		}
		out[i] = u
	}
	return strings.Join(out, ",")
}

// waitNATSClosed waits (boundedly) for a drained connection to close.
func (s *Server) waitNATSClosed() {
	deadline := time.Now().Add(5 * time.Second)
	for !s.nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.nc.Close()
}

// natsHooks forwards the NATS connection's events to the parts built after
// the connection: the bus (requests in flight end on a disconnect; a live
// subscription that dropped messages) and the hub (a resync after a
// reconnection). Until a part exists its events have nothing to act on.
type natsHooks struct {
	bus atomic.Pointer[bus.Bus]
	hub atomic.Pointer[room.Hub]
}

func (h *natsHooks) disconnected() {
	if b := h.bus.Load(); b != nil {
		b.Disconnected()
	}
}

func (h *natsHooks) reconnected() {
	if b := h.bus.Load(); b != nil {
		b.Reconnected()
	}
	if hub := h.hub.Load(); hub != nil {
		hub.Resync()
	}
}

func (h *natsHooks) asyncError(sub *nats.Subscription, err error) {
	if b := h.bus.Load(); b != nil {
		b.AsyncError(sub, err)
	}
}
