package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// RFC 7515 section 4.1.11: a crit naming an extension the server does not
// understand (it understands none) is refused, and so is a crit that is
// not a non-empty array of names; the signature is valid in every case.
func TestVerifyRefusesCrit(t *testing.T) {
	k := newTestKeys(t)
	v := newVerifier(t, hmacKeys(t, k.secret))
	for name, tc := range map[string]struct {
		crit any
		want string
	}{
		"unknown extension": {[]string{"x-roomcast-test"}, "critical"},
		"a registered name": {[]string{"exp"}, "critical"},
		"a string":          {"x-roomcast-test", "malformed"},
		"empty":             {[]string{}, "malformed"},
		"a number in it":    {[]any{"x-roomcast-test", 7}, "malformed"},
		"null":              {nil, "malformed"},
	} {
		h := map[string]any{"alg": "HS256", "typ": "JWT", "crit": tc.crit, "x-roomcast-test": true}
		_, err := v.Verify(forge(t, h, claims(), jwt.SigningMethodHS256, k.secret))
		if Reason(err) != tc.want {
			t.Errorf("%s: Reason = %s, want %s (err: %v)", name, Reason(err), tc.want, err)
		}
	}
	h := map[string]any{"alg": "HS256", "typ": "JWT"}
	if _, err := v.Verify(forge(t, h, claims(), jwt.SigningMethodHS256, k.secret)); err != nil {
		t.Fatalf("the same token without crit: %v", err)
	}
}

// RFC 7519 section 4: claim names are case-sensitive, so a claim under
// another case is an unknown claim, ignored; section 2: exp, nbf and iat
// are numbers, and a string holding digits is refused.
func TestVerifyClaimNamesAndTypes(t *testing.T) {
	k := newTestKeys(t)
	v := newVerifier(t, hmacKeys(t, k.secret))
	verify := func(c jwt.MapClaims) (*Claims, error) {
		return v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, "", c))
	}

	c, err := verify(with("permissions", nil, "Permissions", []string{"admin"}, "PERMISSIONS", []string{"admin"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Permissions) != 0 || c.MayRead("pool", "p1") {
		t.Errorf("Permissions = %q from a claim named Permissions", c.Permissions)
	}
	c, err = verify(with("user_id", nil, "User_ID", "admin", "USER_ID", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "u1" {
		t.Errorf("UserID = %q, want the sub u1: User_ID is not user_id", c.UserID)
	}
	c, err = verify(with("user_id", nil, "sub", nil, "Sub", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "" {
		t.Errorf("UserID = %q from a claim named Sub", c.UserID)
	}
	if _, err := verify(with("exp", nil, "EXP", testNow.Add(1e12).Unix())); Reason(err) != "missing_claim" {
		t.Errorf("EXP without exp: Reason = %s, want missing_claim", Reason(err))
	}
	if _, err := verify(with("iss", nil, "ISS", "issuer-1")); Reason(err) != "missing_claim" {
		t.Errorf("ISS without iss: Reason = %s, want missing_claim", Reason(err))
	}
	nullExp := claims()
	nullExp["exp"] = nil // with() would delete it

	for name, c := range map[string]jwt.MapClaims{
		"exp string":    with("exp", "9999999999"),
		"nbf string":    with("nbf", "0"),
		"iat string":    with("iat", "0"),
		"exp null":      nullExp,
		"exp bool":      with("exp", true),
		"exp object":    with("exp", map[string]any{"n": 1}),
		"permissions 1": with("permissions", "admin"),
	} {
		_, err := verify(c)
		if Reason(err) != "malformed" {
			t.Errorf("%s: Reason = %s, want malformed (err: %v)", name, Reason(err), err)
		}
	}
	// A number, fractional or in exponent form, stays a NumericDate.
	if _, err := verify(with("exp", 1.7e10)); err != nil {
		t.Errorf("exp 1.7e10: %v", err)
	}
}
