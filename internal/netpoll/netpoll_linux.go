//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Poller is one epoll instance and the goroutine that waits on it.
type Poller struct {
	epfd   int
	wakefd int // an eventfd that Close writes to end the wait

	// The watches by descriptor: a slice, since descriptors are small and
	// dense, costs a word per descriptor where a map would cost several
	// per watch.
	mu      sync.Mutex
	byFD    []*Watch // guarded by mu
	watches int      // guarded by mu
	nextGen atomic.Uint32

	done chan struct{}
}

// Watch is one connection's registration.
type Watch struct {
	p   *Poller
	fd  int32
	gen uint32 // tells this watch from an earlier one of the same descriptor
	fn  func()
}

// events are what a watch waits for: data, or the peer hanging up (which a
// read then reports).
const events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// New starts a poller; Close stops it.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	// The wake-up's data is 0, which no watch has (generations start at 1).
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, fmt.Errorf("netpoll: watch eventfd: %w", err)
	}
	p := &Poller{epfd: epfd, wakefd: wakefd, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// Add watches c: fn is called once, on the poller's goroutine, when c has
// something to read or the peer hung up; Rearm watches again. fn must not
// block (it starts the goroutine that reads). The watch must be removed
// before c is closed.
func (p *Poller) Add(c Conn, fn func()) (*Watch, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return nil, fmt.Errorf("netpoll: file descriptor: %w", err)
	}
	// Generation 0 is the wake-up's.
	gen := p.nextGen.Add(1)
	if gen == 0 {
		gen = p.nextGen.Add(1)
	}
	w := &Watch{p: p, fd: int32(fd), gen: gen, fn: fn}
	p.mu.Lock()
	if fd >= len(p.byFD) {
		p.byFD = append(p.byFD, make([]*Watch, fd+1-len(p.byFD))...)
	}
	p.byFD[fd] = w
	p.watches++
	p.mu.Unlock()
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, w.event()); err != nil {
		p.forget(w)
		return nil, fmt.Errorf("netpoll: epoll_ctl add: %w", err)
	}
	return w, nil
}

func (w *Watch) event() *unix.EpollEvent {
	ev := &unix.EpollEvent{Events: events}
	// The descriptor and the generation ride in the event's data, so an
	// event for a watch removed meanwhile (its descriptor perhaps reused)
	// is recognised and ignored.
	*(*uint64)(dataOf(ev)) = uint64(w.fd)<<32 | uint64(w.gen)
	return ev
}

// Rearm watches the connection again after its callback fired.
func (w *Watch) Rearm() error {
	if err := unix.EpollCtl(w.p.epfd, unix.EPOLL_CTL_MOD, int(w.fd), w.event()); err != nil {
		return fmt.Errorf("netpoll: epoll_ctl mod: %w", err)
	}
	return nil
}

// Remove stops watching; the callback is not called after it returns,
// unless it was already under way.
func (w *Watch) Remove() {
	w.p.forget(w)
	// ENOENT or EBADF mean the socket is already gone, and its watch with it.
	_ = unix.EpollCtl(w.p.epfd, unix.EPOLL_CTL_DEL, int(w.fd), nil)
}

func (p *Poller) forget(w *Watch) {
	p.mu.Lock()
	if p.byFD[w.fd] == w {
		p.byFD[w.fd] = nil
		p.watches--
	}
	p.mu.Unlock()
}

// lookup is the watch an event's data names, nil if it has gone.
func (p *Poller) lookup(data uint64) *Watch {
	fd, gen := int(data>>32), uint32(data)
	p.mu.Lock()
	defer p.mu.Unlock()
	if fd < len(p.byFD) && p.byFD[fd] != nil && p.byFD[fd].gen == gen {
		return p.byFD[fd]
	}
	return nil
}

// Watches is the number of connections watched.
func (p *Poller) Watches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watches
}

// Close stops the poller's goroutine and releases the epoll instance;
// callbacks stop. Connections still watched are left alone.
func (p *Poller) Close() {
	one := [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
	<-p.done
	_ = unix.Close(p.epfd)
	_ = unix.Close(p.wakefd)
}

// run waits for events and calls the watches' callbacks.
func (p *Poller) run() {
	defer close(p.done)
	evs := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, evs, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // the epoll instance is unusable: nothing left to wait for
		}
		for i := range evs[:n] {
			data := *(*uint64)(dataOf(&evs[i]))
			if data == 0 {
				return // Close
			}
			if w := p.lookup(data); w != nil {
				w.fn()
			}
		}
	}
}
