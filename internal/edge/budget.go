package edge

// Connections upgraded without a token hold a slot of the node while they
// wait to send one: without a budget of their own, bare upgrades (cheap
// to open, each held for the auth timeout) could fill --max-connections
// and keep every client with a token out.

// DefaultMaxUnauthenticated bounds the connections waiting to
// authenticate when MaxConnections does not (see unauthLimit).
const DefaultMaxUnauthenticated = 1024

// DefaultMaxUnauthenticatedPerSource bounds those from one source: a
// client sends its auth request within a round trip of its upgrade, so
// even many clients behind one NAT seldom have more waiting at once.
const DefaultMaxUnauthenticatedPerSource = 32

// unauthLimit is the budget of connections waiting to authenticate: the
// configured one, else a quarter of MaxConnections (so three quarters stay
// for clients with tokens), else DefaultMaxUnauthenticated.
func unauthLimit(configured, maxConnections int) int {
	switch {
	case configured > 0:
		return configured
	case maxConnections > 0:
		return max(1, min(DefaultMaxUnauthenticated, maxConnections/4))
	}
	return DefaultMaxUnauthenticated
}

// unauthCount is what is held against the budget: upgrades admitted and
// connections, in all and by source.
type unauthCount struct {
	all      int
	bySource map[string]int // no entry for a source holding none
}

// admission is what an upgrade holds of the unauthenticated budget.
type admission struct {
	unauth bool   // upgraded without a token on a node that requires one
	source string // its source for the cap per source; "": not capped
}

// reserve admits an upgrade unless the node is draining or full, or it
// has no token and the unauthenticated budget, or its source's share, is
// spent; register or unreserve ends the reservation.
func (s *Server) reserve(a admission) *refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The budgets of token-less upgrades first, the narrowest first: the
	// answer names what the client can change (send its token, or stop
	// opening so many sockets).
	switch {
	case s.draining:
		return errDraining
	case a.unauth && a.source != "" && s.unauth.bySource[a.source] >= s.opts.MaxUnauthenticatedPerSource:
		return errUnauthSource
	case a.unauth && s.unauth.all >= s.opts.MaxUnauthenticated:
		return errUnauth
	case s.opts.MaxConnections > 0 && len(s.conns)+s.pending >= s.opts.MaxConnections:
		return errFull
	}
	if a.unauth {
		s.unauth.all++
		s.m.Unauth.Inc()
		if a.source != "" {
			s.unauth.bySource[a.source]++
		}
	}
	s.pending++
	return nil
}

// unreserve ends a reservation whose upgrade failed.
func (s *Server) unreserve(a admission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending--
	s.release(a)
}

// release gives back what a holds of the budget; s.mu is held.
func (s *Server) release(a admission) {
	if !a.unauth {
		return
	}
	s.unauth.all--
	s.m.Unauth.Dec()
	if a.source == "" {
		return
	}
	if s.unauth.bySource[a.source]--; s.unauth.bySource[a.source] <= 0 {
		delete(s.unauth.bySource, a.source) // no entry outlives its source's connections
	}
}

// settleAuth takes ss off the unauthenticated budget: it authenticated
// (it now counts as any connection) or closed. Later calls do nothing.
func (s *Server) settleAuth(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release(ss.admission)
	ss.admission.unauth = false
}
