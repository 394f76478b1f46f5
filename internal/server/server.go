// Package server is the composition root of `roomcast serve`: it builds the
// parts (NATS, bus, rooms, the WebSocket front, the admin endpoints), runs
// the listeners, and owns the order of startup and shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/dashboard"
	"github.com/roomcast/roomcast/internal/edge"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/netpoll"
	"github.com/roomcast/roomcast/internal/rebalance"
	"github.com/roomcast/roomcast/internal/room"
	"github.com/roomcast/roomcast/internal/tlsconf"
	"github.com/roomcast/roomcast/internal/wheel"
)

// Server is one running edge node.
type Server struct {
	// Set by Start.
	cfg     *config.Serve
	log     *slog.Logger
	reg     *prometheus.Registry
	m       *metrics.Metrics
	ns      *natsserver.Server // nil when connected to an external NATS
	nc      *nats.Conn
	bus     *bus.Bus
	hub     *room.Hub
	edge    *edge.Server
	poller  *netpoll.Poller // nil where there is none: connections keep reader goroutines
	wheel   *wheel.Wheel    // keep-alive and token deadlines of every connection
	wsLn    net.Listener
	adminLn net.Listener
	admin   *http.Server
	// stopWatch ends the watch of the stream's advisories.
	stopWatch func()
	// stopAuth ends the JWKS refresh, if any.
	stopAuth context.CancelFunc
	// stopKeeper ends the state keeper.
	stopKeeper context.CancelFunc
	// cluster is the node's membership in the cluster.
	cluster *cluster.Node
	// rebalance sheds connections above the node's share; set after the
	// node joins the cluster, read by the cluster's status callback.
	rebalance atomic.Pointer[rebalance.Loop]

	wg       sync.WaitGroup // the goroutines Start launched
	shutdown sync.Once
	started  atomic.Bool // set when Start is done; guards the fields above for the admin handler
	draining atomic.Bool
	hooks    natsHooks
}

// Start builds and starts a node. It returns once the node serves
// WebSocket clients; Shutdown stops it.
func Start(ctx context.Context, cfg *config.Serve, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.m = metrics.New(s.reg, cfg.ServerName)
	if err := checkPorts(cfg); err != nil {
		return nil, err
	}

	adminHandler, err := s.adminHandler()
	if err != nil {
		return nil, err
	}
	if s.adminLn, err = s.listenAdmin(); err != nil {
		return nil, err
	}
	s.admin = &http.Server{Handler: adminHandler, ReadHeaderTimeout: 5 * time.Second}
	s.goRun(func() { _ = s.admin.Serve(s.adminLn) })

	if err = s.connectNATS(ctx); err != nil {
		return nil, err
	}
	if s.bus, err = bus.New(s.nc, bus.Options{
		Prefix: cfg.SubjectPrefix, Logger: log, Metrics: s.m, ReaderRate: readerRate(cfg.ReplayRate),
		Stream: bus.StreamConfig{
			Replicas: cfg.StreamReplicas, MaxAge: cfg.RetentionMaxAge,
			MaxMsgsPerRoom: cfg.RetentionMaxPerRoom, MaxPayload: int32(cfg.MaxPayload),
		},
		State: bus.StateConfig{MaxKeysPerRoom: cfg.StateMaxKeysPerRoom, MaxAge: cfg.StateMaxAge},
	}); err != nil {
		return nil, err
	}
	s.hooks.bus.Store(s.bus)
	if err = s.ensureStream(ctx); err != nil {
		return nil, err
	}
	keeperCtx, stopKeeper := context.WithCancel(context.Background())
	s.stopKeeper = stopKeeper
	s.goRun(func() { s.bus.RunKeeper(keeperCtx, cfg.ServerName) })

	authCtx, stopAuth := context.WithCancel(context.Background())
	s.stopAuth = stopAuth
	verifier, err := s.verifier(authCtx)
	if err != nil {
		return nil, err
	}

	s.hub = room.New(room.Options{Source: s.bus, Logger: log, Metrics: s.m, CatchUpMemory: cfg.CatchUpMemory})
	s.hooks.hub.Store(s.hub)
	if s.stopWatch, err = s.bus.WatchStream(s.hub.Resync, s.hub.CheckStream); err != nil {
		return nil, err
	}
	s.startIdleMachinery()
	s.edge = edge.New(edge.Options{
		Hub: s.hub, Logger: log, Metrics: s.m,
		Conn: conn.Options{
			MaxQueueMessages: cfg.SendQueueMessages, MaxQueueBytes: cfg.SendQueueBytes,
			SocketSendBuffer: cfg.SocketSendBuffer,
			MaxMessageSize:   int64(cfg.MaxMessageSize), PingInterval: cfg.PingInterval,
			WriteTimeout: cfg.WriteTimeout, Poller: s.poller, Wheel: s.wheel,
			Resets: new(sync.Mutex),
		},
		MaxConnections: cfg.MaxConnections, MaxSubscriptions: cfg.MaxSubscriptions, RateLimit: cfg.RateLimit,
		Auth: verifier, AuthTimeout: cfg.Auth.Timeout,
		AllowedOrigins: cfg.AllowedOrigins, Available: s.bus.Connected,
		Rooms:              s.bus.RecentRooms,
		MaxUnauthenticated: cfg.MaxUnauthenticated, MaxUnauthenticatedPerSource: cfg.MaxUnauthenticatedPerSource, TrustedProxies: cfg.TrustedProxies,
		Compression: cfg.Compression,
		Pages:       dashboardPages(cfg),
	})
	if s.wsLn, err = s.listenWS(); err != nil {
		return nil, err
	}
	s.goRun(func() { _ = s.edge.Serve(s.wsLn) })
	s.started.Store(true)
	if err = s.joinCluster(); err != nil {
		return nil, err
	}
	log.Info("roomcast serving", "listen", s.wsLn.Addr().String(), "tls", cfg.TLS(), "client_certificates", cfg.TLSCA != "",
		"auth", cfg.Auth.Configured(),
		"admin", s.adminLn.Addr().String(), "nats", s.natsDescription(), "stream_replicas", cfg.StreamReplicas)
	if cfg.Dashboard {
		log.Info("dashboard at "+s.DashboardURL(), "url", s.DashboardURL())
	}
	return s, nil
}

// DashboardURL is where a browser on this machine finds the dashboard:
// the WebSocket listener's address, with loopback for an address that
// listens on every interface.
func (s *Server) DashboardURL() string { return browserURL(s.cfg.TLS(), s.wsLn.Addr().String()) }

// browserURL is the URL of / on a listener at addr, with loopback for an
// address that listens on every interface.
func browserURL(tls bool, addr string) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// wheelTick is the precision of keep-alive and token deadlines.
const wheelTick = 100 * time.Millisecond

// startIdleMachinery starts what lets idle connections cost no goroutine:
// the timer wheel, and the poller where the platform has one (without it
// each connection keeps a reader goroutine, and works the same).
func (s *Server) startIdleMachinery() {
	s.wheel = wheel.New(wheelTick)
	p, err := netpoll.New()
	if err != nil {
		s.log.Warn("no socket poller: each connection keeps a reader goroutine", "err", err)
		return
	}
	s.poller = p
}

// listenWS opens the WebSocket listener, with TLS when configured.
func (s *Server) listenWS() (net.Listener, error) {
	return s.listenTLS("WebSocket listener (--listen)", s.cfg.Listen,
		tlsconf.Files{Cert: s.cfg.TLSCert, Key: s.cfg.TLSKey, CA: s.cfg.TLSCA})
}

// listenAdmin opens the admin listener, with TLS when configured.
func (s *Server) listenAdmin() (net.Listener, error) {
	return s.listenTLS("admin listener (--admin-listen)", s.cfg.AdminAddr(),
		tlsconf.Files{Cert: s.cfg.AdminTLSCert, Key: s.cfg.AdminTLSKey})
}

// listenTLS opens the listener for what on addr, with TLS when files name
// a certificate (reloaded from disk when the files change).
func (s *Server) listenTLS(what, addr string, files tlsconf.Files) (net.Listener, error) {
	var cfg *tls.Config
	if files.Cert != "" {
		r, err := tlsconf.New(files, s.log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		cfg = r.Config()
	}
	ln, err := listen(what, addr)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

// dashboardPages are the files served to plain HTTP requests on the
// WebSocket listener: the dashboard, unless --dashboard=false.
func dashboardPages(cfg *config.Serve) fs.FS {
	if !cfg.Dashboard {
		return nil
	}
	return dashboard.Files()
}

// WSAddr is the WebSocket listener's address.
func (s *Server) WSAddr() string { return s.wsLn.Addr().String() }

// AdminAddr is the admin listener's address.
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// NATSURL is the client URL of the embedded NATS server, "" when external.
func (s *Server) NATSURL() string {
	if s.ns == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Hub exposes the rooms, for tests that check interest.
func (s *Server) Hub() *room.Hub { return s.hub }

// NATSConn is the node's NATS connection, for tests that provoke faults.
func (s *Server) NATSConn() *nats.Conn { return s.nc }

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) natsDescription() string {
	if s.ns != nil {
		return "embedded " + s.ns.ClientURL() + " data " + s.cfg.ResolvedDataDir()
	}
	return redactURLs(s.cfg.NATS)
}

// ensureStream creates or updates the event and state streams, retrying
// while NATS or JetStream is not there yet (a cluster still electing, say).
func (s *Server) ensureStream(ctx context.Context) error {
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.bus.EnsureStream(cctx)
		if err == nil {
			err = s.bus.EnsureStateStream(cctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		s.log.Warn("stream not ready; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream setup: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// Shutdown drains the node: readiness goes false, the WebSocket listener
// closes, clients get server.draining and 1001 spread over most of the drain
// timeout, then NATS is drained and everything stops. It returns within the
// drain timeout plus a few seconds.
func (s *Server) Shutdown() { s.shutdown.Do(s.drainAndStop) }

func (s *Server) drainAndStop() {
	s.draining.Store(true)
	s.stopRebalance()
	s.log.Info("draining", "connections", s.edge.ConnCount(), "timeout", s.cfg.DrainTimeout, "ready_false_for", s.cfg.DrainDelay)
	// Readiness is false from now on; load balancers take a moment to
	// notice, during which new clients still arrive and are served.
	if s.cfg.DrainDelay > 0 {
		time.Sleep(s.cfg.DrainDelay)
	}
	_ = s.wsLn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	s.edge.Drain(ctx, s.cfg.DrainTimeout*6/10)
	s.closeAll()
	s.log.Info("stopped")
}

// closeAll releases whatever Start built, in reverse order.
func (s *Server) closeAll() {
	if s.wsLn != nil {
		_ = s.wsLn.Close()
	}
	s.stopRebalance()
	if s.cluster != nil {
		s.cluster.Close()
	}
	if s.stopWatch != nil {
		s.stopWatch()
	}
	if s.stopAuth != nil {
		s.stopAuth()
	}
	if s.stopKeeper != nil {
		s.stopKeeper()
	}
	if s.hub != nil {
		s.hub.Close()
	}
	if s.nc != nil {
		if err := s.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.nc.Close()
		}
		s.waitNATSClosed()
	}
	if s.bus != nil {
		s.bus.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	if s.poller != nil {
		s.poller.Close()
	}
	if s.wheel != nil {
		s.wheel.Close()
	}
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.admin.Shutdown(ctx)
		cancel()
	}
	s.wg.Wait()
}

// readerRate is bus.Options.ReaderRate for --replay-rate, whose 0 means
// not paced.
func readerRate(rate int) int {
	if rate == 0 {
		return -1
	}
	return rate
}
