package dashboard_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// cutProxy relays loopback TCP connections to a node, and can cut them
// all and refuse new ones for a while: the browser sees what it would see
// when the network to its node fails (a connection reset, no close
// frame), which no API of the page or the node can fake.
type cutProxy struct {
	ln net.Listener

	mu      sync.Mutex
	target  string                // where new connections go
	conns   map[net.Conn]struct{} // both sides of every relayed connection
	refused bool                  // new connections are closed at once
	wg      sync.WaitGroup
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.refused {
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.relay(c, up)
		go p.relay(up, c)
	}
}

// relay copies one direction; when either side ends, both are closed.
func (p *cutProxy) relay(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	p.drop(dst)
	p.drop(src)
}

func (p *cutProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	// A reset rather than a FIN: the page sees a failed connection.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// cut closes every relayed connection; refuse says whether new ones are
// closed too until allow.
func (p *cutProxy) cut(refuse bool) {
	p.mu.Lock()
	p.refused = refuse
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		p.drop(c)
	}
}

// retarget sends new connections to target; open ones stay where they are.
func (p *cutProxy) retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *cutProxy) allow() {
	p.mu.Lock()
	p.refused = false
	p.mu.Unlock()
}
