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
	// DefaultJWKSTimeout bounds one fetch; a token verification may wait
	// for it.
	DefaultJWKSTimeout = 10 * time.Second
	// DefaultJWKSMaxSize bounds the document; real ones are a few KiB.
	DefaultJWKSMaxSize = 1 << 20
)

// JWKSOptions configure a JWKSSource. Zero fields take the defaults.
type JWKSOptions struct {
	// Client makes the requests; it carries the TLS configuration (a
	// private CA, for instance). Required.
	Client *http.Client
	// Refresh is the period of the background refresh.
	Refresh time.Duration
	// MinInterval is the least time between two fetches caused by unknown
	// kids.
	MinInterval time.Duration
	// Timeout bounds one fetch.
	Timeout time.Duration
	// MaxSize bounds the document, in bytes.
	MaxSize int64
	// OnError, when set, is called with each failed refresh (the cached
	// keys stay in use), for logging. It must not block.
	OnError func(error)
}

// JWKSSource is a KeySource that fetches a JWKS document over HTTPS, keeps
// the last good one, refreshes it in the background and when a token names
// a kid it does not know. When the endpoint is down or serves a bad
// document, the cached keys stay in use. It is safe for concurrent use.
type JWKSSource struct {
	url  string
	opts JWKSOptions

	keys atomic.Pointer[Keys] // never nil after NewJWKSSource

	// mu serialises fetches, so concurrent tokens with the same new kid
	// cause one request and all see its result.
	mu          sync.Mutex
	lastAttempt time.Time

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
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultJWKSRefresh
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = DefaultJWKSMinInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultJWKSTimeout
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultJWKSMaxSize
	}
	s := &JWKSSource{url: u.String(), opts: opts, done: make(chan struct{})}
	s.lastAttempt = time.Now()
	keys, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.keys.Store(keys)

	// The source owns this context: it ends with ctx or with Close, and
	// both the background loop and kid-triggered fetches run under it.
	s.ctx, s.cancel = context.WithCancel(ctx)
	go s.run()
	return s, nil
}

// Keys returns the cached keys. When kid is not empty and no cached key
// carries it, the document is fetched first, unless a fetch happened less
// than MinInterval ago; the caller then waits at most Timeout.
func (s *JWKSSource) Keys(kid string) *Keys {
	cur := s.keys.Load()
	if kid == "" || cur.hasKID(kid) {
		return cur
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Another caller may have fetched while this one waited for the lock.
	if cur = s.keys.Load(); cur.hasKID(kid) {
		return cur
	}
	if time.Since(s.lastAttempt) < s.opts.MinInterval {
		return cur
	}
	s.refreshLocked()
	return s.keys.Load()
}

// Close stops the background refresh and waits for it to end. The cached
// keys stay usable. Close is idempotent.
func (s *JWKSSource) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run refreshes the document every Refresh until the source's context ends.
func (s *JWKSSource) run() {
	defer close(s.done)
	t := time.NewTicker(s.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.refreshLocked()
			s.mu.Unlock()
		}
	}
}

// refreshLocked fetches the document and replaces the cached keys on
// success; on failure it keeps them and reports. s.mu must be held.
func (s *JWKSSource) refreshLocked() {
	s.lastAttempt = time.Now()
	keys, err := s.fetch(s.ctx)
	if err != nil {
		if s.opts.OnError != nil && s.ctx.Err() == nil {
			s.opts.OnError(err)
		}
		return
	}
	s.keys.Store(keys)
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
	resp, err := s.opts.Client.Do(req)
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
