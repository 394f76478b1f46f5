package wire

import (
	"bytes"
	"encoding/json"
)

// parsePayloadFast reads the common shape of a worker's payload,
// {"event": NAME, "data": {...}} in that order, with no escapes in NAME,
// without reflection: a replay decodes every stored event, and
// encoding/json's Unmarshal was most of what a replay spent per event. ok
// is false for anything else (other keys, another order, escapes, an
// invalid name or data), which the general parser then decides on, so the
// outcome is the general parser's in every case: this is only quicker.
// data shares p's memory unless it had whitespace to remove.
func parsePayloadFast(p []byte) (name string, data json.RawMessage, ok bool) {
	i, ok := expect(p, 0, `{`)
	if ok {
		i, ok = expect(p, i, `"event"`)
	}
	if ok {
		i, ok = expect(p, i, `:`)
	}
	if !ok {
		return "", nil, false
	}
	name, i, ok = eventName(p, skipSpace(p, i))
	if ok {
		i, ok = expect(p, i, `,`)
	}
	if ok {
		i, ok = expect(p, i, `"data"`)
	}
	if ok {
		i, ok = expect(p, i, `:`)
	}
	if !ok {
		return "", nil, false
	}
	data, ok = lastObject(p, skipSpace(p, i))
	if !ok {
		return "", nil, false
	}
	if bytes.ContainsAny(data, " \t\r\n") {
		var buf bytes.Buffer
		buf.Grow(len(data))
		if json.Compact(&buf, data) != nil {
			return "", nil, false
		}
		data = buf.Bytes()
	}
	return name, data, true
}

// expect skips whitespace at i, then token, and returns the index after it.
func expect(p []byte, i int, token string) (int, bool) {
	i = skipSpace(p, i)
	if !bytes.HasPrefix(p[i:], []byte(token)) {
		return i, false
	}
	return i + len(token), true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(p []byte, i int) int {
	for i < len(p) && isSpace(p[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// eventName reads a quoted event name at i made of the characters
// CheckEventName allows (none needs escaping) and returns the index after
// its closing quote.
func eventName(p []byte, i int) (string, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return "", i, false
	}
	end := bytes.IndexByte(p[i+1:], '"')
	if end < 0 {
		return "", i, false
	}
	name := string(p[i+1 : i+1+end])
	if CheckEventName(name) != nil {
		return "", i, false
	}
	return name, i + end + 2, true
}

// lastObject returns the JSON object that starts at i and ends right
// before p's closing brace (and trailing whitespace), if it is valid.
func lastObject(p []byte, i int) (json.RawMessage, bool) {
	end := skipSpaceBack(p, i, len(p))
	if end <= i || p[end-1] != '}' {
		return nil, false
	}
	end = skipSpaceBack(p, i, end-1)
	if i >= end || p[i] != '{' || !json.Valid(p[i:end]) {
		return nil, false
	}
	return p[i:end:end], true
}

// skipSpaceBack moves end back over whitespace, not before i.
func skipSpaceBack(p []byte, i, end int) int {
	for end > i && isSpace(p[end-1]) {
		end--
	}
	return end
}
