package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/roomcast/roomcast/internal/check"
	"github.com/roomcast/roomcast/internal/config"
)

// errSomeDown makes check exit 1 once it has printed its table.
var errSomeDown = errors.New("some services are down")

func runCheck(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "check", "")
	var given config.List
	fs.Var(&given, "service", "NAME=HOST:PORT (or NAME=PORT on 127.0.0.1) to probe; repeat; default: the ecosystem's services on 127.0.0.1")
	file := fs.String("file", "", "a file of services, one NAME HOST:PORT per line (# comments)")
	timeout := fs.Duration("timeout", 2*time.Second, "per service: connect, handshake and ping")
	free := fs.Bool("free", false, "report which ports are already taken instead (before starting the services)")
	asJSON := fs.Bool("json", false, "one JSON object per service")
	if err := parseFlags(fs, env, args, nil); err != nil {
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
	if *free {
		return printPorts(env, check.Free(services), *asJSON)
	}
	return printProbes(env, check.Probe(ctx, services, *timeout), *asJSON)
}

// checkServices is what --service and --file name, or the defaults.
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
	if len(out) == 0 {
		out = check.Defaults
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
