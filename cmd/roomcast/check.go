package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomcast/roomcast/internal/check"
	"github.com/roomcast/roomcast/internal/config"
)

// errSomeDown makes check exit 1 once it has printed its table.
var errSomeDown = errors.New("some services are down")

// runCheck probes this node's listeners (as serve's address flags and
// their ROOMCAST_* variables place them), or the services named; exit 0
// when all are up (--free: all ports free), 1 when any is not, 2 on a
// usage error.
func runCheck(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "check", "")
	var given config.List
	fs.Var(&given, "service", "NAME=HOST:PORT (or NAME=PORT on 127.0.0.1) of a WebSocket service to probe instead of the node's listeners; repeat")
	file := fs.String("file", "", "a file of WebSocket services to probe instead, one NAME HOST:PORT per line (# comments)")
	ecosystem := fs.Bool("ecosystem", false, "probe the deployment's list of WebSocket services on 127.0.0.1 instead (session-buddy, mahavishnu, crackerjack, akosha, dhruva, excalidraw-mcp, fastblocks)")
	node := registerNodeAddrs(fs)
	timeout := fs.Duration("timeout", 2*time.Second, "per service: connect, handshake and ping")
	free := fs.Bool("free", false, "report which ports are already taken instead (before starting the services): every conflict at once")
	asJSON := fs.Bool("json", false, "one JSON object per service")
	if err := parseFlags(fs, env, args, config.ServeCompat); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive, got %s", *timeout)
	}
	services, err := checkServices(given, *file)
	if err != nil {
		return usageError{err}
	}
	switch {
	case *ecosystem && len(services) > 0:
		return usagef("--ecosystem with --service or --file: give one list")
	case *ecosystem:
		services = check.Ecosystem
	case len(services) == 0:
		if services, err = node.services(); err != nil {
			return usageError{err}
		}
	}
	if *free {
		return printPorts(env, check.Free(services), *asJSON)
	}
	return printProbes(env, check.Probe(ctx, services, *timeout), *asJSON)
}

// nodeAddrs are serve's address flags, as check reads them: where this
// node's listeners are.
type nodeAddrs struct {
	serve config.Serve
}

func registerNodeAddrs(fs *flag.FlagSet) *nodeAddrs {
	n := &nodeAddrs{}
	fs.StringVar(&n.serve.Listen, "listen", config.DefaultListen, "the node's WebSocket listen address, as serve's --listen")
	fs.StringVar(&n.serve.AdminListen, "admin-listen", config.DefaultAdminListen, "the node's admin address (or port), as serve's --admin-listen")
	fs.StringVar(&n.serve.NATSListen, "nats-listen", config.DefaultNATSListen, "the node's embedded NATS address, as serve's --nats-listen; not probed when --nats is set, or empty")
	fs.Var(&n.serve.NATS, "nats", "as serve's --nats: when set, the node uses that NATS and has no embedded one to probe")
	return n
}

// services are the node's listeners, named "roomcast websocket", "roomcast
// admin" and "roomcast nats"; a port of 0 or -1 (any free one) cannot be
// probed and is a usage error.
func (n *nodeAddrs) services() ([]check.Service, error) {
	natsAddr := n.serve.NATSListen
	if !n.serve.Embedded() {
		natsAddr = ""
	}
	out := check.Node(n.serve.Listen, n.serve.AdminAddr(), natsAddr)
	for _, s := range out {
		if _, err := check.ParseService(s.Name + "=" + s.Addr); err != nil || strings.HasSuffix(s.Addr, ":0") || strings.HasSuffix(s.Addr, ":-1") {
			return nil, fmt.Errorf("%s: address %q: want HOST:PORT with a fixed port", s.Name, s.Addr)
		}
	}
	return out, nil
}

// checkServices is what --service and --file name; none when neither is
// given.
func checkServices(given config.List, file string) ([]check.Service, error) {
	var out []check.Service
	for _, v := range given {
		s, err := check.ParseService(v)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		more, err := check.ParseList(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, more...)
	}
	return out, nil
}

func printProbes(env *environment, results []check.Result, asJSON bool) error {
	down := 0
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "SERVICE\tADDRESS\tSTATUS\tRTT\t")
	}
	for _, r := range results {
		if !r.Up {
			down++
		}
		if asJSON {
			if err := json.NewEncoder(env.stdout).Encode(r); err != nil {
				return err
			}
			continue
		}
		rtt := "-"
		if r.Up {
			rtt = fmt.Sprintf("%.2f ms", r.RTTMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Addr, r.Status, rtt, r.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if down > 0 {
		return fmt.Errorf("%w: %d of %d", errSomeDown, down, len(results))
	}
	return nil
}

func printPorts(env *environment, ports []check.Port, asJSON bool) error {
	taken := 0
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "SERVICE\tADDRESS\tPORT\t")
	}
	for _, p := range ports {
		state := "free"
		if !p.Free {
			state, taken = "taken", taken+1
		}
		if asJSON {
			if err := json.NewEncoder(env.stdout).Encode(p); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Addr, state, p.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if taken > 0 {
		return fmt.Errorf("%d of %d ports are taken", taken, len(ports))
	}
	return nil
}
