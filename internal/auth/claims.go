package auth

import (
	"encoding/json"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// tokenClaims is the JSON shape of a token's payload.
type tokenClaims struct {
	jwt.RegisteredClaims
	UserID      string   `json:"user_id,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

// UnmarshalJSON decodes the payload strictly, where encoding/json's struct
// decoding is lenient in two ways RFC 7519 does not allow:
//   - claim names are case-sensitive (section 4): encoding/json would take
//     "Permissions" for permissions and "User_ID" for user_id, so a token
//     could grant what its issuer never wrote under the real name;
//   - exp, nbf and iat are NumericDates, JSON numbers (section 2): the
//     library's NumericDate decodes a string holding digits too.
//
// Unknown claims are ignored, as the RFC asks.
func (c *tokenClaims) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("auth: %w: the payload is not a JSON object", ErrMalformed)
	}
	fields := []struct {
		name string
		dst  any
	}{
		{"iss", &c.Issuer}, {"sub", &c.Subject}, {"aud", &c.Audience}, {"jti", &c.ID},
		{"user_id", &c.UserID}, {"permissions", &c.Permissions},
	}
	for _, f := range fields {
		if raw, ok := m[f.name]; ok {
			if err := json.Unmarshal(raw, f.dst); err != nil {
				// The name is one of ours, never token text.
				return fmt.Errorf("auth: %w: claim %s has the wrong type", ErrMalformed, f.name)
			}
		}
	}
	dates := []struct {
		name string
		dst  **jwt.NumericDate
	}{{"exp", &c.ExpiresAt}, {"nbf", &c.NotBefore}, {"iat", &c.IssuedAt}}
	for _, d := range dates {
		raw, ok := m[d.name]
		if !ok {
			continue
		}
		var n jwt.NumericDate
		if !isJSONNumber(raw) || json.Unmarshal(raw, &n) != nil {
			return fmt.Errorf("auth: %w: claim %s is not a number", ErrMalformed, d.name)
		}
		*d.dst = &n
	}
	return nil
}

// isJSONNumber reports whether raw, one JSON value, is a number (not a
// string, null or anything else); json.Unmarshal then checks its syntax.
func isJSONNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// checkCrit applies RFC 7515 section 4.1.11 to a token's header: `crit`,
// when present, must be a non-empty array of names, and each names an
// extension the recipient must understand or refuse the token. This
// package understands no extension, so a well-formed crit is refused too.
func checkCrit(header map[string]any) error {
	v, ok := header["crit"]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return fmt.Errorf("auth: %w: crit is not a non-empty array", ErrMalformed)
	}
	for _, e := range list {
		if _, ok := e.(string); !ok {
			return fmt.Errorf("auth: %w: crit holds a value that is not a name", ErrMalformed)
		}
	}
	return fmt.Errorf("auth: %w", ErrCritical)
}
