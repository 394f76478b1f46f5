// Package dashboard is the live web page an edge serves to plain HTTP
// requests on its WebSocket port: plain HTML, CSS and JavaScript modules
// embedded in the binary, with no build step and nothing loaded from
// elsewhere. The page connects back to the node it came from, subscribes
// to the rooms a person picks, draws pools (worker tiles, queue, tasks,
// scaling) and workflows (a timeline of runs), and resumes with since
// after every reconnection, saying how many missed events it replayed.
package dashboard

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files are the page's files: index.html at the root, and what it loads.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above: it cannot be missing
	}
	return sub
}
