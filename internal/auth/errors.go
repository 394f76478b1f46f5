package auth

import "errors"

// The reasons a token is refused. Verify wraps exactly one of them, so
// errors.Is and Reason can classify any error it returns.
var (
	// ErrMalformed: not a JWT (segments, base64 or JSON), or a claim of the
	// wrong type.
	ErrMalformed = errors.New("malformed token")
	// ErrTooLarge: the token is longer than Options.MaxTokenSize; it was not
	// parsed.
	ErrTooLarge = errors.New("token too large")
	// ErrAlgorithm: the token's `alg` is not one the configured keys can
	// verify (this covers `none` and key-type confusion).
	ErrAlgorithm = errors.New("algorithm not accepted")
	// ErrNoKey: no configured key matches the token's `kid` and algorithm.
	ErrNoKey = errors.New("no matching key")
	// ErrSignature: the signature does not verify with any matching key.
	ErrSignature = errors.New("invalid signature")
	// ErrExpired: `exp` is in the past (beyond the leeway).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: `nbf` or `iat` is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrMissingClaim: a required claim (`exp`, or `iss`/`aud` when
	// configured) is absent.
	ErrMissingClaim = errors.New("required claim missing")
	// ErrAudience: `aud` does not contain the configured audience.
	ErrAudience = errors.New("wrong audience")
	// ErrIssuer: `iss` is not the configured issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrCritical: the `crit` header names an extension this package does
	// not understand (RFC 7515 section 4.1.11); it understands none.
	ErrCritical = errors.New("unsupported critical header")
)

// reasons maps each sentinel to its label. The order matters only for
// errors that wrap several sentinels, which Verify does not produce.
var reasons = []struct {
	err   error
	label string
}{
	{ErrMalformed, "malformed"},
	{ErrTooLarge, "too_large"},
	{ErrAlgorithm, "algorithm"},
	{ErrNoKey, "no_key"},
	{ErrSignature, "signature"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrMissingClaim, "missing_claim"},
	{ErrAudience, "audience"},
	{ErrIssuer, "issuer"},
	{ErrCritical, "critical"},
}

// ReasonOther is Reason's label for an error that wraps none of this
// package's sentinels.
const ReasonOther = "other"

// Reasons returns every label Reason gives an error (not "ok", which is no
// refusal), so that a counter by reason can start each at 0.
func Reasons() []string {
	labels := make([]string, 0, len(reasons)+1)
	for _, r := range reasons {
		labels = append(labels, r.label)
	}
	return append(labels, ReasonOther)
}

// Reason returns a short label for why a token was refused, from a fixed set
// (malformed, too_large, algorithm, no_key, signature, expired,
// not_yet_valid, missing_claim, audience, issuer, critical), so that it can be a
// metric label without unbounded cardinality. It returns "ok" for nil and
// "other" for an error that wraps none of this package's sentinels.
func Reason(err error) string {
	if err == nil {
		return "ok"
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return ReasonOther
}
