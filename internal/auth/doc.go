// Package auth verifies the JWTs clients present (docs/protocol.md section 4),
// decides which rooms a verified token may read, and mints tokens for the
// `roomcast token` command and for tests.
//
// The pieces, in the order a token meets them:
//
//   - Keys holds the verification keys: an HMAC secret, PEM public keys,
//     or a JWKS document. The algorithms a Verifier accepts follow from the
//     keys alone, so `none` is never accepted and a token cannot choose an
//     algorithm of another key type (the HS256-with-an-RSA-public-key attack).
//   - JWKSSource fetches a JWKS document over HTTPS and keeps it fresh on
//     a goroutine of its own: a token never waits for the network.
//   - Verifier checks a token's size, signature and claims and returns Claims.
//   - Claims.MayRead is the per-room authorization: default deny.
//   - Signer mints tokens.
//
// Errors from Verify wrap one of a small, fixed set of sentinel errors, so
// Reason(err) can be used as a metric label. No error message of this
// package contains a token, a part of one, or key material: messages are
// built from fixed text and values this package chose, never from the error
// text of the JWT library (which may quote decoded token bytes).
package auth
