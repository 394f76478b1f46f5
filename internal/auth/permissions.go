package auth

// PermAdmin is the permission that reads every room.
const PermAdmin = "admin"

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
