package integration

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// workerConn is a pool worker's NATS connection, as user publisher, to
// every server of the cluster through the test's dialer. It notices a
// server that stopped answering within a few seconds (pings every second)
// and moves to another; nothing is buffered while it is disconnected, so a
// publish then fails at once and is retried.
func workerConn(c *cluster) (*nats.Conn, error) {
	nc, err := nats.Connect(edgeNATSURLs, nats.Name("integration publisher"),
		nats.UserInfo("publisher", c.pw.publisher),
		nats.SetCustomDialer(c), nats.SkipHostLookup(), nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3), nats.Timeout(2*time.Second),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // not nats.go's print to stderr
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	return nc, nil
}

// publisher publishes numbered events to rooms in turn at a steady rate,
// each with a JetStream ack. An event is retried until it is stored, with
// the same Nats-Msg-Id, so a retry whose first attempt was stored after
// all is dropped by the stream as a duplicate and never stored twice.
type publisher struct {
	js    jetstream.JetStream
	rooms []string
	every time.Duration
	// cancel ends the retries of the event in flight, when Stop has
	// waited a minute for it to be stored.
	cancel context.CancelFunc
	stop   chan struct{} // closed by Stop
	done   chan struct{} // closed when the loop has ended

	mu         sync.Mutex
	n          map[string]int            // guarded by mu: events published per room, numbered from 1
	acks       map[string]map[int]uint64 // guarded by mu: room → number → stored sequence
	count      int                       // guarded by mu: events stored
	retries    int                       // guarded by mu: attempts that failed and were retried
	duplicates int                       // guarded by mu: retries the stream said it had already stored
	errs       map[string]int            // guarded by mu: why attempts failed, counted
	lastAck    time.Time                 // guarded by mu
	err        error                     // guarded by mu: why the loop gave up, if it did
}

// startPublisher starts publishing rate events a second to rooms until
// Stop, or until ctx ends.
func startPublisher(ctx context.Context, js jetstream.JetStream, rooms []string, rate int) *publisher {
	ctx, cancel := context.WithCancel(ctx)
	p := &publisher{js: js, rooms: rooms, every: time.Second / time.Duration(rate),
		cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}),
		n: map[string]int{}, acks: map[string]map[int]uint64{}, errs: map[string]int{}}
	go p.run(ctx)
	return p
}

func (p *publisher) run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		room := p.rooms[i%len(p.rooms)]
		p.mu.Lock()
		p.n[room]++
		n := p.n[room]
		p.mu.Unlock()
		if err := p.publish(ctx, room, n); err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			return
		}
	}
}

// publish stores event n of room, retrying until it is stored or ctx ends.
func (p *publisher) publish(ctx context.Context, room string, n int) error {
	payload := fmt.Sprintf(`{"event":"worker.status_changed","data":{"worker_id":"w%d","status":"busy","pool_id":%q,"n":%d}}`,
		n%7, strings.TrimPrefix(room, "pool:"), n)
	for {
		m := nats.NewMsg(roomSubject(room))
		m.Data = []byte(payload)
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/%d", room, n))
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err := p.js.PublishMsg(actx, m)
		cancel()
		if err == nil {
			p.mu.Lock()
			if p.acks[room] == nil {
				p.acks[room] = map[int]uint64{}
			}
			p.acks[room][n] = ack.Sequence
			p.count++
			p.lastAck = time.Now()
			if ack.Duplicate {
				p.duplicates++
			}
			p.mu.Unlock()
			return nil
		}
		p.mu.Lock()
		p.retries++
		p.errs[errKind(err)]++
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("event %d of %s not stored: %w", n, room, err)
		case <-time.After(50 * time.Millisecond): // a pause between retries
		}
	}
}

// errKind shortens an error for counting.
func errKind(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// Stop ends publishing once the event in flight is stored (giving up on
// it after a minute), and returns why the publisher gave up, if it did.
func (p *publisher) Stop() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.cancel()
		<-p.done
	}
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stored is the number of events stored so far.
func (p *publisher) stored() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// counts are the events stored, the attempts retried and the retries
// the stream found already stored.
func (p *publisher) counts() (stored, retries, duplicates int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count, p.retries, p.duplicates
}

// waitStored waits until n more events than now are stored.
func (p *publisher) waitStored(ctx context.Context, timeout time.Duration, n int) error {
	want := p.stored() + n
	return waitUntil(ctx, timeout, fmt.Sprintf("%d more events stored", n), func() error {
		if got := p.stored(); got < want {
			return fmt.Errorf("%d of %d stored (publisher errors: %v)", got, want, p.errors())
		}
		return nil
	})
}

// errors are the failed attempts' reasons so far, counted.
func (p *publisher) errors() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.errs)
}

// checkStored compares what the publisher was told with what the stream
// holds: every event acknowledged at minSeq or later is stored at the
// sequence of its ack, and the room holds each number once, in order. With
// complete, the room holds exactly the events published, 1..n.
func (p *publisher) checkStored(room string, truth []stored, minSeq uint64, complete bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var problems []string
	bySeq := make(map[uint64]int, len(truth))
	for i, s := range truth {
		bySeq[s.Seq] = s.N
		if i > 0 && s.N <= truth[i-1].N {
			problems = append(problems, fmt.Sprintf("%s: event %d stored at %d after event %d at %d (twice, or out of order)",
				room, s.N, s.Seq, truth[i-1].N, truth[i-1].Seq))
		}
	}
	for n, seq := range p.acks[room] {
		if seq < minSeq {
			continue
		}
		if got, ok := bySeq[seq]; !ok || got != n {
			problems = append(problems, fmt.Sprintf("%s: event %d was acknowledged at seq %d, which the stream does not hold (has %d there: %v)",
				room, n, seq, got, ok))
		}
	}
	if complete && (len(truth) != p.n[room] || len(truth) > 0 && truth[0].N != 1) {
		problems = append(problems, fmt.Sprintf("%s: the stream holds %d events, the publisher published %d", room, len(truth), p.n[room]))
	}
	return problems
}
