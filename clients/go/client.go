package roomcast

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Client follows rooms on roomcast nodes: it connects, subscribes,
// reconnects and resumes, and hands each event over once, in order,
// through Next. Its own goroutine owns the connection; Subscribe,
// Unsubscribe, Next and Close may be called from any goroutine.
type Client struct {
	opts   Options
	out    chan Message  // to Next; closed when run ends
	wake   chan struct{} // a command is queued
	cancel context.CancelFunc
	done   chan struct{} // run has ended

	mu     sync.Mutex
	cmds   []command // queued by Subscribe and Unsubscribe for run
	closed bool
	err    error // why run ended: a *StopError, or ErrClosed

	// Owned by run's goroutine.
	token   string
	tokenAt time.Time // when token was received
	rooms   map[string]*room
	order   []string // rooms in the order they were first subscribed
}

// command is a change of the rooms followed.
type command struct {
	room        string
	opts        SubscribeOptions
	unsubscribe bool
}

// Connect starts a client and returns at once: the connection, its
// failures and its reconnections are told through Next. The client runs
// until Close, until ctx ends, or until it stops for good (Next then
// returns a *StopError). The error is for options that cannot work.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Client{opts: o, out: make(chan Message, o.Buffer), wake: make(chan struct{}, 1),
		cancel: cancel, done: make(chan struct{}), token: o.Token, tokenAt: time.Now(), rooms: make(map[string]*room)}
	go c.run(ctx)
	return c, nil
}

// Subscribe follows room (again, with new options, if it was followed
// already). It does not wait: the Subscribed, or a RequestError notice,
// comes through Next.
func (c *Client) Subscribe(room string, opts SubscribeOptions) error {
	switch {
	case room == "":
		return errors.New("roomcast: subscribe: no room")
	case opts.Epoch != "" && opts.Since == nil:
		return errors.New("roomcast: subscribe: an epoch needs the since it is the stream of")
	}
	return c.queue(command{room: room, opts: opts})
}

// Unsubscribe stops following room. Its events already waiting for Next
// still come; no later ones do, and the room is not subscribed again.
func (c *Client) Unsubscribe(room string) error {
	return c.queue(command{room: room, unsubscribe: true})
}

func (c *Client) queue(cmd command) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// takeCommands returns the queued commands.
func (c *Client) takeCommands() []command {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmds := c.cmds
	c.cmds = nil
	return cmds
}

// Next returns the next message: an *Event, a *Subscribed or a *Notice.
// Its error is final: a *StopError when the client stopped for good (the
// messages before it were all handed over), ErrClosed after Close; or
// ctx's error when ctx ended first.
func (c *Client) Next(ctx context.Context) (Message, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	select {
	case m, ok := <-c.out:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return nil, c.err
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the client: it closes its connection (1000) and waits for
// its goroutines. Next then returns ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
	return nil
}

// deliver hands m to Next, waiting while the buffer is full (the client
// then reads nothing); false when the client is closing.
func (c *Client) deliver(ctx context.Context, m Message) bool {
	select {
	case c.out <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// notice delivers a notice.
func (c *Client) notice(ctx context.Context, n Notice) bool { return c.deliver(ctx, &n) }

// run connects, and reconnects, until ctx ends or the client stops.
func (c *Client) run(ctx context.Context) {
	err := c.connectLoop(ctx)
	if ctx.Err() != nil {
		err = ErrClosed
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.out)
	close(c.done)
}

// connectLoop makes attempts, one URL each in turn, until the client
// stops (its error) or ctx ends.
func (c *Client) connectLoop(ctx context.Context) error {
	failures := 0 // attempts failed since a connection last opened
	for attempt := 0; ; attempt++ {
		c.applyCommands(nil)
		url := c.opts.URLs[attempt%len(c.opts.URLs)]
		end := c.session(ctx, url)
		if ctx.Err() != nil {
			return nil
		}
		if end.opened {
			failures = 0
		}
		next := c.decide(ctx, end)
		if next.stop != nil {
			if ctx.Err() == nil {
				c.notice(ctx, Notice{Kind: Disconnected, Code: end.code, Text: end.text + "; stopping", URL: url, Retry: -1})
			}
			return next.stop
		}
		wait := atOnceJitter()
		text := end.text + "; reconnecting now"
		if !next.atOnce {
			failures++
			wait = backoff(failures, c.opts.BackoffMin, c.opts.BackoffMax, jitter())
			text = end.text + "; reconnecting in " + wait.Round(time.Millisecond).String()
		}
		if !c.notice(ctx, Notice{Kind: Disconnected, Code: end.code, Text: text, URL: url, Retry: wait}) {
			return nil
		}
		if !c.sleep(ctx, wait) {
			return nil
		}
	}
}

// sleep waits d, applying the commands queued meanwhile; false when ctx
// ended first.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-c.wake:
			c.applyCommands(nil)
		}
	}
}
