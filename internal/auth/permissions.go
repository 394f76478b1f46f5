package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/roomcast/roomcast/internal/wire"
)

// PermAdmin is the permission that reads every room.
const PermAdmin = "admin"

// Admin reports whether the claims carry the permission `admin`, which
// besides every room opens the cluster's view (the request `cluster`).
// A nil Claims has none.
func (c *Claims) Admin() bool {
	return c != nil && slices.Contains(c.Permissions, PermAdmin)
}

// MayRead reports whether the claims allow subscribing to the room
// kind:id (docs/protocol.md section 4): with permission `admin`, `<kind>:read`
// (every room of the kind) or `<kind>:read:<id>` (that one room).
// Everything else is refused, including a nil Claims and an empty kind or
// id, so a caller's parsing mistake fails closed.
//
// Matching is exact string comparison: no wildcards, no prefixes, no case
// folding, so `pool:read:p1` does not open `pool:p10`.
func (c *Claims) MayRead(kind, id string) bool {
	if c == nil || kind == "" || id == "" {
		return false
	}
	for _, p := range c.Permissions {
		if p == PermAdmin {
			return true
		}
		// Check the shape before comparing, without building strings per
		// permission: p must be kind + ":read" [+ ":" + id].
		if len(p) <= len(kind) || p[:len(kind)] != kind {
			continue
		}
		rest := p[len(kind):]
		if rest == ":read" || rest == ":read:"+id {
			return true
		}
	}
	return false
}

// CheckPermission reports whether p is a permission of the grammar MayRead
// decides by (docs/protocol.md section 4): `admin`, `KIND:read` or
// `KIND:read:ID`, with KIND and ID as in room names (wire.ParseRoom). Any
// other string opens no room, so a token carrying one is a mistake.
func CheckPermission(p string) error {
	if p == PermAdmin {
		return nil
	}
	kind, rest, ok := strings.Cut(p, ":")
	if !ok {
		return fmt.Errorf("permission %q: want admin, KIND:read or KIND:read:ID", p)
	}
	verb, id, hasID := strings.Cut(rest, ":")
	if verb != "read" {
		return fmt.Errorf("permission %q: want admin, KIND:read or KIND:read:ID (the only verb is read)", p)
	}
	var err error
	if hasID {
		_, err = wire.ParseRoom(kind + ":" + id)
	} else {
		err = wire.CheckKind(kind)
	}
	if err != nil {
		return fmt.Errorf("permission %q: %w", p, err)
	}
	return nil
}
