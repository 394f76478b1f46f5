package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for JWKSOptions.
const (
	// DefaultJWKSRefresh is how often the document is fetched: identity
	// providers publish a new key well before they sign with it, so a few
	// minutes is enough, and an unknown kid refreshes sooner anyway.
	DefaultJWKSRefresh = 5 * time.Minute
	// DefaultJWKSMinInterval bounds fetches caused by unknown kids: a
	// client sending random kids must not turn into a flood on the
	// identity provider.
	DefaultJWKSMinInterval = 5 * time.Second
	// DefaultJWKSTimeout bounds one fetch. No token verification waits
	// for it: fetches run on the source's own goroutine.
	DefaultJWKSTimeout = 10 * time.Second
	// DefaultJWKSMaxSize bounds the document; real ones are a few KiB.
	DefaultJWKSMaxSize = 1 << 20
)

// JWKSOptions configure a JWKSSource. Zero fields take the defaults.
type JWKSOptions struct {
	// Client makes the requests; it carries the TLS configuration (a
	// private CA, for instance). Required. The source uses a copy whose
	// CheckRedirect follows redirects within the URL's scheme and host
	// only.
	Client *http.Client
	// Refresh is the period of the background refresh.
	Refresh time.Duration
	// MinInterval is the least time from the end of one fetch to the
	// start of a fetch caused by unknown kids.
	MinInterval time.Duration
	// Timeout bounds one fetch.
	Timeout time.Duration
	// MaxSize bounds the document, in bytes.
	MaxSize int64
	// OnError, when set, is called with each failed refresh (the cached
	// keys stay in use), for logging. It must not block.
	OnError func(error)
}

// maxWantedKIDs bounds the unknown kids remembered between two fetches. A
// flood of random kids fills it at once; past it, kids are not remembered
// but still cause the one pending fetch.
const maxWantedKIDs = 16

// maxJWKSRedirects bounds the redirects of one fetch.
const maxJWKSRedirects = 5

// JWKSSource is a KeySource that fetches a JWKS document over HTTPS, keeps
// the last good one, and refreshes it in the background: periodically, and
// soon after a token names a kid it does not know. No caller of Keys ever
// waits for the network: a token with an unknown kid is refused at once,
// and the same kid verifies once the background fetch has brought it.
// When the endpoint is down or serves a bad document, the cached keys stay
// in use. It is safe for concurrent use.
type JWKSSource struct {
	url    string
	opts   JWKSOptions
	client *http.Client // opts.Client with the same-origin redirect policy

	keys atomic.Pointer[Keys] // never nil after NewJWKSSource

	// All fetches after the first run on the run goroutine, one at a
	// time: that is the single flight. Keys only records the kid and
	// nudges the loop.
	mu     sync.Mutex
	wanted map[string]struct{} // unknown kids asked for since the last fetch began
	kick   chan struct{}       // capacity 1: a nudge is pending or not

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// NewJWKSSource fetches the document at rawURL, which must be https, and
// starts the background refresh, which runs until ctx ends or Close is
// called. It fails when the first fetch fails: a node that starts without
// keys would refuse every token, and should say so at once.
func NewJWKSSource(ctx context.Context, rawURL string, opts JWKSOptions) (*JWKSSource, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	if u.Scheme != "https" {
		// Keys fetched in clear text can be swapped by anyone on the path.
		return nil, fmt.Errorf("auth: JWKS URL %s is not https", u.Redacted())
	}
	if opts.Client == nil {
		return nil, errors.New("auth: JWKS source needs an HTTP client")
	}
	opts = opts.withDefaults()
	client := *opts.Client
	client.CheckRedirect = sameOrigin
	s := &JWKSSource{
		url: u.String(), opts: opts, client: &client,
		wanted: make(map[string]struct{}), kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	keys, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.keys.Store(keys)

	// The source owns this context: it ends with ctx or with Close, and
	// every later fetch runs under it, so Close also cuts a hanging one.
	s.ctx, s.cancel = context.WithCancel(ctx)
	go s.run(time.Now())
	return s, nil
}

func (o JWKSOptions) withDefaults() JWKSOptions {
	if o.Refresh <= 0 {
		o.Refresh = DefaultJWKSRefresh
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultJWKSMinInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultJWKSTimeout
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultJWKSMaxSize
	}
	return o
}

// sameOrigin is the fetch's redirect policy: a redirect to another scheme
// or host (an https endpoint sending the node to http://, or to a host the
// operator never named) could hand it keys from anyone, so it is refused.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= maxJWKSRedirects {
		return fmt.Errorf("auth: JWKS: stopped after %d redirects", len(via))
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("auth: JWKS: redirect to %s://%s refused: not the configured scheme and host", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// Keys returns the cached keys at once. When kid is not empty and no
// cached key carries it, it also asks the background loop for a fetch
// (MinInterval after the end of the last one at the earliest), whose keys
// a later call returns.
func (s *JWKSSource) Keys(kid string) *Keys {
	cur := s.keys.Load()
	if kid == "" || cur.hasKID(kid) {
		return cur
	}
	s.mu.Lock()
	if len(s.wanted) < maxWantedKIDs {
		s.wanted[kid] = struct{}{}
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default: // a nudge is already pending
	}
	return cur
}

// Close stops the background refresh, cutting a fetch in progress, and
// waits for it to end. The cached keys stay usable. Close is idempotent.
func (s *JWKSSource) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run refreshes the document every Refresh, and for unknown kids no sooner
// than MinInterval after the end of the last fetch (lastEnd), until the
// source's context ends.
func (s *JWKSSource) run(lastEnd time.Time) {
	defer close(s.done)
	tick := time.NewTicker(s.opts.Refresh)
	defer tick.Stop()
	var later *time.Timer // armed while a kid-caused fetch waits for MinInterval
	for {
		var laterC <-chan time.Time
		if later != nil {
			laterC = later.C
		}
		select {
		case <-s.ctx.Done():
			if later != nil {
				later.Stop()
			}
			return
		case <-tick.C:
			lastEnd = s.refresh()
		case <-s.kick:
		case <-laterC:
			later = nil
		}
		if !s.stillWanted() {
			continue
		}
		if wait := s.opts.MinInterval - time.Since(lastEnd); wait > 0 {
			if later == nil {
				later = time.NewTimer(wait)
			}
			continue
		}
		lastEnd = s.refresh()
	}
}

// stillWanted forgets the wanted kids the cached keys now carry and
// reports whether any is left.
func (s *JWKSSource) stillWanted() bool {
	cur := s.keys.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for kid := range s.wanted {
		if cur.hasKID(kid) {
			delete(s.wanted, kid)
		}
	}
	return len(s.wanted) > 0
}

// refresh fetches the document and replaces the cached keys on success; on
// failure it keeps them and reports. It returns when the fetch ended. The
// kids wanted so far are forgotten: this fetch answers them, and one that
// did not bring them (random kids) must not cause another.
func (s *JWKSSource) refresh() time.Time {
	s.mu.Lock()
	clear(s.wanted)
	s.mu.Unlock()
	keys, err := s.fetch(s.ctx)
	if err != nil {
		if s.opts.OnError != nil && s.ctx.Err() == nil {
			s.opts.OnError(err)
		}
		return time.Now()
	}
	s.keys.Store(keys)
	return time.Now()
}

// fetch gets and parses the document.
func (s *JWKSSource) fetch(ctx context.Context) (*Keys, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// The client's error names the URL with any password stripped.
		return nil, fmt.Errorf("auth: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: fetching JWKS: status %s", resp.Status)
	}
	// Read one byte past the limit to tell "exactly at" from "over".
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: reading JWKS: %w", err)
	}
	if int64(len(body)) > s.opts.MaxSize {
		return nil, fmt.Errorf("auth: JWKS larger than %d bytes", s.opts.MaxSize)
	}
	return ParseJWKS(body)
}
