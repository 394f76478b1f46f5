package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// generatorProc is the parent's side of a generator child process.
type generatorProc struct {
	child   *child
	stdin   *os.File            // the write end of the child's standard input
	replies chan generatorReply // its replies, in order
	ready   generatorReply      // its ready reply
}

// Bounds of the generators' replies.
const (
	generatorConnectTimeout = 10 * time.Minute // for every connection to be subscribed
	generatorReplyTimeout   = time.Minute      // for a reply, besides a step's grace
)

// startGenerator starts `exe bench-generator` pinned to cpus and sends it
// setup; awaitReady waits until it has connected.
func startGenerator(ctx context.Context, exe string, cpus []int, setup GeneratorSetup) (*generatorProc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("generator %d: %w", setup.Index, err)
	}
	g := &generatorProc{stdin: w, replies: make(chan generatorReply, 16)}
	c, err := startChildIO(ctx, exe, cpus, []string{"bench-generator"}, func(line []byte) bool {
		var rep generatorReply
		return json.Unmarshal(line, &rep) == nil && rep.Gen == genStarted
	}, childIO{stdin: r, after: g.onLine})
	_ = r.Close() // the child has its copy
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("generator %d: %w", setup.Index, err)
	}
	g.child = c
	if err := g.send(setup); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// onLine takes a reply line; others (a crash's output) stay in the
// child's tail for the error. It must not block: a reply the parent did
// not wait for is dropped once 16 wait.
func (g *generatorProc) onLine(line []byte) {
	var rep generatorReply
	if json.Unmarshal(line, &rep) != nil || rep.Gen == "" && rep.Problem == "" {
		return
	}
	select {
	case g.replies <- rep:
	default:
	}
}

// send writes one line to the generator.
func (g *generatorProc) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("generator: %w", err)
	}
	if _, err := g.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("generator: send: %w", err)
	}
	return nil
}

// await waits for the next reply, which must be of kind want.
func (g *generatorProc) await(ctx context.Context, want string, timeout time.Duration) (generatorReply, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case rep := <-g.replies:
		if rep.Gen != want {
			return rep, fmt.Errorf("generator: want %s, got %q (%s)", want, rep.Gen, rep.Problem)
		}
		return rep, nil
	case <-g.child.done:
		return generatorReply{}, fmt.Errorf("generator exited (%v); its last output:\n%s", g.child.err, g.child.out.tail())
	case <-timer.C:
		return generatorReply{}, fmt.Errorf("generator: no %s within %s", want, timeout)
	case <-ctx.Done():
		return generatorReply{}, ctx.Err()
	}
}

// close ends the generator: the end of its input closes its connections.
func (g *generatorProc) close() {
	_ = g.stdin.Close()
	select {
	case <-g.child.done:
	case <-time.After(10 * time.Second):
	}
	g.child.kill()
}
