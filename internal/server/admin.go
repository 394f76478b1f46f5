package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roomcast/roomcast/internal/reload"
)

// adminHandler serves the probes, metrics, /connz and /roomz of
// docs/protocol.md section 7. The probes are always open (the kubelet
// sends no credentials); metrics, /connz, /roomz and profiles, which tell
// about the node's insides, ask for the bearer token of --admin-token-file
// when one is set.
func (s *Server) adminHandler() (http.Handler, error) {
	protect, err := s.adminAuth()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := s.ready(r.Context()); err != nil {
			s.m.Ready.Set(0)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(readiness{Ready: false, Reason: err.Error()})
			return
		}
		s.m.Ready.Set(1)
		_ = json.NewEncoder(w).Encode(readiness{Ready: true})
	})
	mux.Handle("GET /metrics", protect(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	mux.Handle("GET /clusterz", protect(http.HandlerFunc(s.clusterz)))
	mux.Handle("GET /connz", protect(http.HandlerFunc(s.serveConnz)))
	mux.Handle("GET /roomz", protect(http.HandlerFunc(s.serveRoomz)))
	if s.cfg.Pprof {
		mux.Handle("/debug/pprof/", protect(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", protect(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", protect(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", protect(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", protect(http.HandlerFunc(pprof.Trace)))
	}
	return mux, nil
}

// minAdminToken is the shortest admin token taken: one short enough to
// guess is no protection.
const minAdminToken = 16

// adminAuth returns what wraps the protected admin endpoints: nothing
// without --admin-token-file, else a check of the request's bearer token
// against the file's, read again when the file changes (a rotated
// Kubernetes secret takes effect without a restart).
func (s *Server) adminAuth() (func(http.Handler) http.Handler, error) {
	file := s.cfg.AdminTokenFile
	if file == "" {
		return func(h http.Handler) http.Handler { return h }, nil
	}
	token, err := reload.New("admin token", []string{file}, func() ([]byte, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if b = bytes.TrimSpace(b); len(b) < minAdminToken {
			return nil, fmt.Errorf("--admin-token-file %s: the token has %d bytes, want at least %d", file, len(b), minAdminToken)
		}
		return b, nil
	}, s.log)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !bearerMatches(r.Header.Get("Authorization"), token.Get()) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="roomcast admin"`)
				http.Error(w, "this endpoint needs the admin bearer token (--admin-token-file)", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}, nil
}

// bearerMatches reports whether an Authorization header carries token as
// a bearer token (the scheme's name in any case, RFC 9110), comparing in
// constant time.
func bearerMatches(header string, token []byte) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), token) == 1
}

// readiness is /readyz's answer.
type readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// ready is true when the node can serve subscriptions: not draining, NATS
// connected, the stream reachable.
func (s *Server) ready(ctx context.Context) error {
	switch {
	case s.draining.Load():
		return fmt.Errorf("draining")
	case !s.started.Load():
		return fmt.Errorf("starting")
	case !s.bus.Connected():
		return fmt.Errorf("NATS disconnected")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.bus.CheckStream(ctx)
}
