package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/connz"
)

// topSlowest is how many of the cluster's slowest connections the screen
// lists.
const topSlowest = 20

// clearScreen moves the cursor home and clears the screen (ANSI), written
// before each view only when stdout is a terminal.
const clearScreen = "\x1b[H\x1b[2J"

// topShow returns what prints each refresh: a view (with its raw JSON) or
// the error that stopped reading one. An error is returned only when
// stdout cannot be written.
func topShow(env *environment, asJSON bool, every time.Duration) func(cluster.View, []byte, error) error {
	term := isTerminal(env.stdout)
	return func(v cluster.View, raw []byte, err error) error {
		if asJSON {
			if err != nil {
				fmt.Fprintf(env.stderr, "roomcast top: %v (retrying every %s)\n", err, every)
				return nil
			}
			var line bytes.Buffer
			if err := json.Compact(&line, raw); err != nil {
				return err
			}
			line.WriteByte('\n')
			_, werr := env.stdout.Write(line.Bytes())
			return werr
		}
		var b bytes.Buffer
		if term {
			b.WriteString(clearScreen)
		}
		if err != nil {
			fmt.Fprintf(&b, "roomcast top  %s\n\n%v\nretrying every %s\n", time.Now().Format(time.TimeOnly), err, every)
		} else {
			writeTopView(&b, v, time.Now())
		}
		_, werr := env.stdout.Write(b.Bytes())
		return werr
	}
}

// writeTopView writes the screen of one view: the cluster's totals, each
// node, then the cluster's slowest connections.
func writeTopView(w io.Writer, v cluster.View, now time.Time) {
	var conns, rooms int
	var events, deliveries float64
	via := v.Node
	for _, n := range v.Nodes {
		conns, rooms = conns+n.Connections, rooms+n.Rooms
		events, deliveries = events+n.EventsPerSecond, deliveries+n.DeliveriesPerSecond
		if n.ID == v.Node {
			via = printable(n.Name)
		}
	}
	fmt.Fprintf(w, "roomcast top  %s  via %s\n%d nodes  %d connections  %d rooms  %.1f events/s  %.1f deliveries/s\n\n",
		now.Format(time.TimeOnly), via, len(v.Nodes), conns, rooms, events, deliveries)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREADY\tCONNS\tROOMS\tEVENTS/S\tDELIVERIES/S\tLAGGING\tSHED\tUP\t")
	for _, n := range v.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.1f\t%d\t%d\t%s\t\n", printable(n.Name), printable(readyText(n.Status)), n.Connections, n.Rooms,
			n.EventsPerSecond, n.DeliveriesPerSecond, n.Lagging, n.Shed, uptime(n.Started, now))
	}
	_ = tw.Flush()
	slow := slowestOf(v.Nodes, topSlowest)
	if len(slow) == 0 {
		fmt.Fprintln(w, "\nno connection is behind")
		return
	}
	fmt.Fprintln(w, "\nSLOWEST CONNECTIONS")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREMOTE\tUSER\tROOMS\tLAG\tQUEUED\tOLDEST WAIT\t")
	for _, c := range slow {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%.1fs\t\n", printable(c.node), printable(c.Remote), printable(cmp.Or(c.User, "-")), printable(roomList(c.Rooms)),
			c.Lag, byteSize(c.QueuedBytes), c.OldestWait)
	}
	_ = tw.Flush()
}

// readyText is a node's readiness: yes, or no with the reason.
func readyText(st cluster.Status) string {
	switch {
	case st.Draining:
		return "draining"
	case st.Ready:
		return "yes"
	case st.Reason != "":
		return "no (" + st.Reason + ")"
	}
	return "no"
}

// uptime is how long a node has run, to the second.
func uptime(started, now time.Time) string {
	if started.IsZero() {
		return "-"
	}
	return now.Sub(started).Truncate(time.Second).String()
}

// nodeConn is one of the cluster's slowest connections, with its node.
type nodeConn struct {
	connz.Conn
	node string
}

// slowestOf is the n most behind of every node's slowest connections:
// by lag, then queued bytes, then the oldest wait.
func slowestOf(nodes []cluster.Summary, n int) []nodeConn {
	var all []nodeConn
	for _, s := range nodes {
		for _, c := range s.Slowest {
			all = append(all, nodeConn{Conn: c, node: s.Name})
		}
	}
	slices.SortStableFunc(all, func(a, b nodeConn) int {
		return cmp.Or(cmp.Compare(b.Lag, a.Lag), cmp.Compare(b.QueuedBytes, a.QueuedBytes), cmp.Compare(b.OldestWait, a.OldestWait))
	})
	return all[:min(n, len(all))]
}

// roomList names a connection's rooms, clipped to a column's width.
func roomList(rooms []connz.Room) string {
	if len(rooms) == 0 {
		return "-"
	}
	names := make([]string, len(rooms))
	for i, r := range rooms {
		names[i] = r.Room
	}
	s := strings.Join(names, ",")
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// byteSize is a byte count for people: B, KiB, MiB.
func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// printable is s with its control characters (a terminal's escape
// sequences among them) shown as U+FFFD: a token's subject, a node's name
// or a reason from NATS must not drive the operator's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}
