//go:build !linux

package netpoll

// Poller is not available here: New fails, and connections keep a reader
// goroutine each.
type Poller struct{}

// Watch is a connection's registration.
type Watch struct{}

// New reports that there is no poller here.
func New() (*Poller, error) { return nil, ErrUnsupported }

// Add is never reached: New fails.
func (p *Poller) Add(Conn, func()) (*Watch, error) { return nil, ErrUnsupported }

// Rearm is never reached.
func (w *Watch) Rearm() error { return ErrUnsupported }

// Remove is never reached.
func (w *Watch) Remove() {}

// Watches is zero.
func (p *Poller) Watches() int { return 0 }

// Close does nothing.
func (p *Poller) Close() {}
