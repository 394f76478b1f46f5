// Package roomcastjs holds the JavaScript client library, roomcast.js, so
// that a node can serve it (at /roomcast.js, beside the dashboard that
// imports it): Go's embed reaches no file outside its package's directory.
package roomcastjs

import "embed"

// Name is the module's file name, and its path on a node.
const Name = "roomcast.js"

// FS holds the module, at Name.
//
//go:embed roomcast.js
var FS embed.FS
