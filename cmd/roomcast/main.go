// Command roomcast is the roomcast edge node and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/roomcast/roomcast/internal/config"
)

// command is one subcommand: run parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
	hidden  bool // internal: not listed in the usage
}

// environment is what a subcommand may touch of the process, injected so
// tests run subcommands in-process.
type environment struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

var commands = []command{
	{"serve", "run an edge node", runServe, false},
	{"publish", "publish one event: publish ROOM EVENT [JSON]", runPublish, false},
	{"tail", "print the events of rooms: tail ROOM...", runTail, false},
	{"demo", "publish a simulated pool system (workers, tasks, scaling, workflows) to watch", runDemo, false},
	{"top", "a live view of every node of the cluster (load, readiness, slowest connections) from one node's admin listener; --json for machines", runTop, false},
	{"check", "probe this node's listeners (WebSocket, admin, embedded NATS) or named WebSocket services; --free: which of their ports are taken", runCheck, false},
	{"token", "mint a token for development and tests: token --perm P [--user U] [--ttl D]; token verify [TOKEN]: its claims, and whether the keys accept it", runToken, false},
	{"version", "print the version, commit and Go version of this binary", runVersion, false},
	{"bench", "load generator: connections, rooms, publish rate; throughput and latency; scenarios against a reference", runBench, false},
	// The NATS server bench scenarios start as a child process.
	{"bench-nats-server", "", runNATSServer, true},
	// A load generator of the cluster scenario, likewise.
	{"bench-generator", "", runGenerator, true},
	{"bench-floor-server", "", runFloorServer, true},
}

// usageError is a mistake in the command line; the exit status is 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError; %w wraps as in fmt.Errorf.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	env := &environment{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := run(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and maps its error to an exit status.
func run(ctx context.Context, env *environment, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	args = flagsMeanServe(args)
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(env.stderr, "roomcast %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(env.stderr, "roomcast %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.stderr, "roomcast: unknown command %q\n\n", args[0])
	usage(env.stderr)
	return 2
}

// flagsMeanServe reads a command line that starts with a flag as serve's
// flags: the image's entrypoint is the bare binary with `serve` as its
// default command, so `docker run IMAGE --allow-anonymous` (and a Helm
// chart's args) replaces that command with flags alone, and `docker run
// IMAGE version` still runs version. -h and --help were handled before.
func flagsMeanServe(args []string) []string {
	if strings.HasPrefix(args[0], "-") {
		return append([]string{"serve"}, args...)
	}
	return args
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: roomcast COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		if c.hidden {
			continue
		}
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nroomcast COMMAND -h shows a command's flags; each flag --x-y may also be set as ROOMCAST_X_Y.")
	fmt.Fprintln(w, "roomcast --flag ... (flags first, no command) is roomcast serve --flag ...")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(env *environment, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: roomcast %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and resolves a subcommand's flags; a bad flag is a usage
// error (the flag package has already printed it).
func parseFlags(fs *flag.FlagSet, env *environment, args []string, compat map[string][]string) error {
	if err := config.Parse(fs, args, env.getenv, compat); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}
