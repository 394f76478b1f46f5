package roomcast

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// tokenExpiry reads the exp claim of a JWT without verifying it (the node
// does that): the zero time when the token has none or does not parse.
func tokenExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}
	}
	sec := int64(*claims.Exp)
	return time.Unix(sec, int64((*claims.Exp-float64(sec))*1e9))
}

// refreshAt is when a token received at got that expires at exp is
// refreshed: at three quarters of its lifetime, and at the latest 10 s
// before exp; a token too short-lived for both is refreshed at half its
// lifetime, so that a refresh never follows another at once. The zero
// time for a token without exp (never).
func refreshAt(got, exp time.Time) time.Time {
	if exp.IsZero() {
		return time.Time{}
	}
	life := exp.Sub(got)
	wait := min(life*3/4, life-10*time.Second)
	return got.Add(max(wait, life/2))
}
