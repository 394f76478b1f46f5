package main

import (
	"os"
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
