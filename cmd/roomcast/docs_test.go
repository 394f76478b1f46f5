package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/config"
)

// protocolDoc is the contract, whose section 6 lists every command's flags.
const protocolDoc = "../../docs/protocol.md"

// flagLine finds a flag's name in a command's -h output.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)

// The contract lists every command, and every flag of each, with its
// ROOMCAST_* variable, in the command's own subsection of section 6:
// operators and scripts use them, and a flag added without a line there is
// a flag the contract does not know.
func TestProtocolListsEveryFlag(t *testing.T) {
	raw, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, c := range commands {
		if c.hidden {
			continue
		}
		if !strings.Contains(doc, "| `roomcast "+c.name) {
			t.Errorf("section 6's table of commands lacks roomcast %s", c.name)
		}
		code, _, help := runCmd(t.Context(), "", c.name, "-h")
		if code != 0 {
			t.Fatalf("roomcast %s -h: exit %d", c.name, code)
		}
		flags := flagLine.FindAllStringSubmatch(help, -1)
		if len(flags) == 0 {
			continue // version has none
		}
		section := commandSection(doc, c.name)
		if section == "" {
			t.Errorf("section 6 has no subsection for roomcast %s", c.name)
			continue
		}
		for _, f := range flags {
			if !strings.Contains(section, "`--"+f[1]+"`") {
				t.Errorf("section 6's subsection of roomcast %s lacks --%s", c.name, f[1])
			}
			if env := config.EnvName(f[1]); !strings.Contains(section, "`"+env+"`") {
				t.Errorf("section 6's subsection of roomcast %s lacks %s, the variable of --%s", c.name, env, f[1])
			}
		}
	}
}

// token verify's flags are in token's subsection too.
func TestProtocolListsTokenVerifysFlags(t *testing.T) {
	raw, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	section := commandSection(string(raw), "token")
	code, _, help := runCmd(t.Context(), "", "token", "verify", "-h")
	flags := flagLine.FindAllStringSubmatch(help, -1)
	if code != 0 || len(flags) == 0 {
		t.Fatalf("roomcast token verify -h: exit %d, %q", code, help)
	}
	for _, f := range flags {
		if !strings.Contains(section, "`--"+f[1]+"`") || !strings.Contains(section, "`"+config.EnvName(f[1])+"`") {
			t.Errorf("section 6's subsection of roomcast token lacks token verify's --%s or its variable", f[1])
		}
	}
}

// commandSection is the text of section 6's subsection of command name,
// from its heading to the next heading; "" when there is none.
func commandSection(doc, name string) string {
	for _, part := range strings.Split(doc, "\n### ")[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		if strings.HasPrefix(heading, "6.") && strings.Contains(heading, "`roomcast "+name) {
			body, _, _ = strings.Cut(body, "\n## ")
			return body
		}
	}
	return ""
}

// operationsDoc is the operators' guide, whose "serve's settings" table
// says what each of serve's flags is for.
const operationsDoc = "../../docs/operations.md"

// The operators' guide lists every flag of serve, so its table cannot
// drift from the flags (the contract's section 6.1 is checked above).
func TestOperationsGuideListsEveryServeFlag(t *testing.T) {
	raw, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, table, found := strings.Cut(string(raw), "\n## serve's settings\n")
	if !found {
		t.Fatalf("%s has no \"serve's settings\" section", operationsDoc)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	code, _, help := runCmd(t.Context(), "", "serve", "-h")
	if code != 0 {
		t.Fatalf("roomcast serve -h: exit %d", code)
	}
	for _, f := range flagLine.FindAllStringSubmatch(help, -1) {
		if !strings.Contains(table, "| `--"+f[1]+"`") && !strings.Contains(table, ", `--"+f[1]+"`") {
			t.Errorf("%s's table of serve's settings lacks --%s", operationsDoc, f[1])
		}
	}
}

// The README and the documents of docs/ link each other by relative paths
// and heading anchors: a moved section or a renamed heading must not leave
// a reader at a dead link.
func TestDocsLinksResolve(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../../README.md", "../../natsconf/README.md", "../../charts/roomcast/README.md")
	fenced := regexp.MustCompile("(?s)```.*?```")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range docs {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(fenced.ReplaceAllString(string(raw), ""), -1) {
			target := m[1]
			if strings.HasPrefix(target, "http") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), path)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s links to %s: no such file", doc, target)
				continue
			}
			if anchor != "" && strings.HasSuffix(file, ".md") && !hasAnchor(t, file, anchor) {
				t.Errorf("%s links to %s: no heading with that anchor", doc, target)
			}
		}
	}
}

// hasAnchor reports whether a markdown file has a heading whose anchor (as
// GitHub makes them: lower case, punctuation dropped, spaces to hyphens) is
// anchor.
func hasAnchor(t *testing.T, file, anchor string) bool {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	for _, m := range regexp.MustCompile(`(?m)^#+ (.*)$`).FindAllStringSubmatch(string(raw), -1) {
		slug := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), ""), " ", "-")
		if slug == anchor {
			return true
		}
	}
	return false
}
