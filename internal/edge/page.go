package edge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

// The WebSocket port also answers plain HTTP GETs with Options.Pages (the
// dashboard): a browser opens http://host:8690/ and the page connects back
// to ws://host:8690/. The request head is peeked before the upgrade so
// that gobwas/ws sees the WebSocket requests untouched and the page
// requests never reach it (it would refuse them half read, as a bad
// Connection header stops its parse).

// headLimit bounds a request head: gobwas/ws's own read buffer.
const headLimit = 4096

// pageHeaders go with every page: it loads nothing from elsewhere and may
// not be framed, so another site cannot dress it up or script it.
const pageHeaders = "Cache-Control: no-cache\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"Referrer-Policy: no-referrer\r\n" +
	"Content-Security-Policy: default-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n" +
	"Connection: close\r\n"

// sharedModule is the client library (clients/js): pages of other
// origins import it from a node, which a browser allows a module only with
// Access-Control-Allow-Origin. It is public code and carries no
// credentials, so any origin may.
const sharedModule = "roomcast.js"

// headReaders recycles the readers that peek request heads; a handshake
// holds one only until its upgrade is done.
type headReaders struct{ pool sync.Pool }

func (h *headReaders) get(r io.Reader) *bufio.Reader {
	if br, ok := h.pool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, headLimit)
}

func (h *headReaders) put(br *bufio.Reader) {
	br.Reset(nil)
	h.pool.Put(br)
}

// requestHead is what the peek learnt of a request.
type requestHead struct {
	method, path string
	host         string // the Host header: the origin check answers for it
	websocket    bool   // an Upgrade: websocket header
	size         int    // bytes of the head, blank line included
}

// pathOnly is the request target without its query, which may hold a
// token (?token=): what may be logged.
func (h requestHead) pathOnly() string {
	p, _, _ := strings.Cut(h.path, "?")
	return p
}

// peekHead reads a request's head without consuming it. A head that is
// not complete within headLimit is returned with websocket set, so that
// the upgrade refuses it with its usual answer.
func peekHead(br *bufio.Reader) (requestHead, error) {
	for {
		b, _ := br.Peek(br.Buffered())
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			return parseHead(b[:i+4]), nil
		}
		if len(b) == br.Size() {
			return requestHead{websocket: true}, nil
		}
		if _, err := br.Peek(len(b) + 1); err != nil { // waits for more
			return requestHead{}, err
		}
	}
}

// parseHead reads the request line and looks for Upgrade: websocket.
func parseHead(head []byte) requestHead {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	h := requestHead{size: len(head)}
	fields := strings.Fields(string(line))
	if len(fields) == 3 {
		h.method, h.path = fields[0], fields[1]
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(line, []byte(":"))
		switch k = bytes.TrimSpace(k); {
		case !ok:
		case bytes.EqualFold(k, []byte("Upgrade")) && bytes.Contains(bytes.ToLower(v), []byte("websocket")):
			h.websocket = true
		case bytes.EqualFold(k, []byte("Host")):
			h.host = string(bytes.TrimSpace(v))
		}
	}
	return h
}

// servePage answers a plain HTTP request from pages ("/" is index.html),
// or the page's origin check with origins, the policy of the upgrade, and
// returns the status it sent.
func servePage(w io.Writer, pages fs.FS, h requestHead, origins originPolicy) (int, error) {
	if h.method != http.MethodGet && h.method != http.MethodHead {
		return writePage(w, h, http.StatusMethodNotAllowed, "text/plain; charset=utf-8", []byte("only GET and HEAD, or a WebSocket upgrade\n"))
	}
	name, query, _ := strings.Cut(h.path, "?")
	switch name = strings.TrimPrefix(name, "/"); name {
	case "":
		name = "index.html"
	case "ws":
		return writePage(w, h, http.StatusBadRequest, "text/plain; charset=utf-8", []byte("this is the WebSocket endpoint; the dashboard is at /\n"))
	case originCheckPath:
		v, err := origins.verdict(query, h.host)
		if err != nil {
			return writePage(w, h, http.StatusBadRequest, "text/plain; charset=utf-8", []byte(err.Error()+"\n"))
		}
		body, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("origin check: %w", err)
		}
		return writePage(w, h, http.StatusOK, "application/json", append(body, '\n'))
	}
	body, err := fs.ReadFile(pages, name)
	if err != nil {
		return writePage(w, h, http.StatusNotFound, "text/plain; charset=utf-8", []byte("not found\n"))
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	extra := ""
	if name == sharedModule {
		extra = "Access-Control-Allow-Origin: *\r\n"
	}
	return writePageWith(w, h, http.StatusOK, ctype, body, extra)
}

func writePage(w io.Writer, h requestHead, status int, ctype string, body []byte) (int, error) {
	return writePageWith(w, h, status, ctype, body, "")
}

// writePageWith writes a page with extra headers (each ending in CRLF).
func writePageWith(w io.Writer, h requestHead, status int, ctype string, body []byte, extra string) (int, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n",
		status, http.StatusText(status), ctype, len(body), pageHeaders, extra)
	if h.method != http.MethodHead {
		b.Write(body)
	}
	_, err := w.Write(b.Bytes())
	return status, err
}
