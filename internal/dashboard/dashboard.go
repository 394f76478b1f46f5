// Package dashboard is the live web page an edge serves to plain HTTP
// requests on its WebSocket port: plain HTML, CSS and JavaScript modules
// embedded in the binary, with no build step and nothing loaded from
// elsewhere. The page connects back to the node it came from with the
// client library, roomcast.js (clients/js, served beside the page),
// subscribes to the rooms a person picks, draws pools (worker tiles,
// queue, tasks, scaling) and workflows (a timeline of runs), and resumes
// with since after every reconnection, saying how many missed events it
// replayed.
package dashboard

import (
	"embed"
	"io/fs"

	roomcastjs "github.com/roomcast/roomcast/clients/js"
)

//go:embed static
var static embed.FS

// Files are the page's files: index.html at the root, what it loads, and
// the client library at roomcast.js.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above: it cannot be missing
	}
	return withModule{sub}
}

// withModule adds the client library to the page's files: it lives in
// clients/js, which this package's embed cannot reach.
type withModule struct{ fs.FS }

func (w withModule) Open(name string) (fs.File, error) {
	if name == roomcastjs.Name {
		return roomcastjs.FS.Open(name)
	}
	return w.FS.Open(name)
}
