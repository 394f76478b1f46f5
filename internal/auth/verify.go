package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults for Options.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat. Small on
	// purpose: it extends every token's life by as much.
	DefaultLeeway = 5 * time.Second
	// DefaultMaxTokenSize bounds the token length. Real tokens are well under
	// 2 KiB; the bound keeps a client from making the server base64- and
	// JSON-decode megabytes per attempt.
	DefaultMaxTokenSize = 8 << 10
)

// KeySource gives a Verifier the keys to verify a token with.
type KeySource interface {
	// Keys returns the current key set. kid is the token's key id, "" when
	// it has none; a source that fetches keys may take a kid it does not
	// know as a sign of key rotation and start a refresh, but must return
	// at once: Keys is called on the connection's handshake, and must
	// never make it wait for the network.
	Keys(kid string) *Keys
}

// Options configure a Verifier. The zero Options check signature, exp, nbf
// and iat with DefaultLeeway and DefaultMaxTokenSize.
type Options struct {
	// Issuer, when set, must equal the token's `iss`.
	Issuer string
	// Audience, when set, must be one of the token's `aud` values.
	Audience string
	// Leeway is the clock skew allowed; 0 means DefaultLeeway, a negative
	// value means none.
	Leeway time.Duration
	// MaxTokenSize is the longest token accepted, in bytes; 0 means
	// DefaultMaxTokenSize.
	MaxTokenSize int
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Claims are what a verified token says about its bearer.
type Claims struct {
	// UserID is the `user_id` claim, or `sub` when there is no user_id. It
	// may be empty: the protocol requires no identity, permissions decide.
	UserID string
	// Permissions is the `permissions` claim.
	Permissions []string
	// ExpiresAt is the `exp` claim; Verify requires it.
	ExpiresAt time.Time
}

// Verifier verifies tokens against a KeySource. It is safe for concurrent
// use.
type Verifier struct {
	src  KeySource
	opts Options
}

// NewVerifier returns a Verifier for the keys of src.
func NewVerifier(src KeySource, opts Options) (*Verifier, error) {
	if src == nil {
		return nil, errors.New("auth: no key source")
	}
	switch {
	case opts.Leeway == 0:
		opts.Leeway = DefaultLeeway
	case opts.Leeway < 0:
		opts.Leeway = 0
	}
	if opts.MaxTokenSize == 0 {
		opts.MaxTokenSize = DefaultMaxTokenSize
	}
	if opts.MaxTokenSize < 0 {
		return nil, fmt.Errorf("auth: negative MaxTokenSize %d", opts.MaxTokenSize)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Verifier{src: src, opts: opts}, nil
}

// Verify checks token and returns its claims. The error, when not nil,
// wraps one of the Err* sentinels (see Reason) and never contains the token.
func (v *Verifier) Verify(token string) (*Claims, error) {
	// Before parsing: the size bound is what makes parsing cheap.
	if len(token) > v.opts.MaxTokenSize {
		return nil, fmt.Errorf("auth: %w: %d bytes, limit %d", ErrTooLarge, len(token), v.opts.MaxTokenSize)
	}
	keys := v.src.Keys("")
	c, tok, err := v.verifyWith(keys, token)
	if err == nil {
		return c, nil
	}
	// A kid the keys do not know may be a rotated key, possibly of a new
	// type (so refused as ErrAlgorithm): tell the source, which refreshes
	// in the background, and try once more only if a refresh that ended
	// meanwhile brought the kid. Otherwise the token is refused now, and
	// a later one with that kid verifies once the refresh is done.
	if r := Reason(err); (r == "no_key" || r == "algorithm") && tok != nil {
		if kid, ok := tok.Header["kid"].(string); ok && kid != "" && !keys.hasKID(kid) {
			if fresh := v.src.Keys(kid); fresh != keys && fresh.hasKID(kid) {
				c, _, err = v.verifyWith(fresh, token)
			}
		}
	}
	return c, err
}

// verifyWith verifies token against one snapshot of keys. It returns the
// parsed (unverified) token too, for its header.
func (v *Verifier) verifyWith(keys *Keys, token string) (*Claims, *jwt.Token, error) {
	algs := keys.Algorithms()
	if len(algs) == 0 {
		// WithValidMethods(nil) would allow every method; refuse outright.
		return nil, nil, fmt.Errorf("auth: %w: the key set is empty", ErrNoKey)
	}
	popts := []jwt.ParserOption{
		// Belt and braces with the check in keyfunc: the library refuses
		// any alg outside the configured keys' algorithms, `none` included,
		// before a key is even looked up.
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.opts.Leeway),
		jwt.WithTimeFunc(v.opts.Now),
	}
	if v.opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(v.opts.Issuer))
	}
	if v.opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(v.opts.Audience))
	}
	var tc tokenClaims
	tok, err := jwt.NewParser(popts...).ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		return keyfunc(keys, t)
	})
	if err != nil {
		return nil, tok, classify(err, tok, algs)
	}
	c := &Claims{UserID: tc.UserID, Permissions: tc.Permissions}
	if c.UserID == "" {
		c.UserID = tc.Subject
	}
	// WithExpirationRequired guarantees exp is present.
	c.ExpiresAt = tc.ExpiresAt.Time
	return c, tok, nil
}

// keyfunc selects the keys for a token: those of the token's algorithm,
// filtered by kid. Only keys whose Go type fits the algorithm are returned,
// so even if the valid-methods check were bypassed, an HS256 token could
// never be checked against an RSA key's bytes.
func keyfunc(keys *Keys, t *jwt.Token) (any, error) {
	// Before any key is chosen: a token that needs an extension we lack
	// is refused whatever its signature (the library ignores crit).
	if err := checkCrit(t.Header); err != nil {
		return nil, err
	}
	alg := t.Method.Alg()
	kid, ok := t.Header["kid"].(string)
	if _, present := t.Header["kid"]; present && !ok {
		return nil, fmt.Errorf("auth: %w: kid is not a string", ErrMalformed)
	}
	// alg is safe to print: t.Method is set, so it is one of the library's
	// registered algorithm names, not arbitrary token text.
	if !slices.Contains(keys.Algorithms(), alg) {
		return nil, fmt.Errorf("auth: %w: %s", ErrAlgorithm, alg)
	}
	cands := keys.candidates(alg, kid)
	if len(cands) == 0 {
		return nil, fmt.Errorf("auth: %w for the token's kid and alg %s", ErrNoKey, alg)
	}
	vks := make([]jwt.VerificationKey, len(cands))
	for i, c := range cands {
		vks[i] = c
	}
	return jwt.VerificationKeySet{Keys: vks}, nil
}

// classify turns the JWT library's error into one wrapping exactly one of
// this package's sentinels. It never includes the library's message, which
// may quote decoded parts of the token.
func classify(err error, tok *jwt.Token, algs []string) error {
	// Our own keyfunc errors come first: they are already classified and
	// carry only our text. The library wraps them with %w.
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return fmt.Errorf("auth: %w", r.err)
		}
	}
	var alg string
	if tok != nil && tok.Method != nil {
		alg = tok.Method.Alg()
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("auth: %w", ErrMalformed)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// An alg the library does not know, or no alg at all.
		return fmt.Errorf("auth: %w: unknown or missing alg", ErrAlgorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// The library reports an alg outside WithValidMethods this way too.
		if !slices.Contains(algs, alg) {
			return fmt.Errorf("auth: %w: %s", ErrAlgorithm, alg)
		}
		return fmt.Errorf("auth: %w", ErrSignature)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("auth: %w", ErrMissingClaim)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("auth: %w", ErrExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("auth: %w", ErrNotYetValid)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Errorf("auth: %w", ErrAudience)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fmt.Errorf("auth: %w", ErrIssuer)
	}
	// Unreachable with jwt v5.3.1; a new library error is still a refusal.
	return fmt.Errorf("auth: %w: unclassified", ErrMalformed)
}
