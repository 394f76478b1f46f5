package servertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
)

// Crowd keeps n idle connections open to url: one the node closes is
// dialled again at once, to the same url, as clients that a load balancer
// keeps sending back to the same node. A node with a crowd stays over its
// share and goes on rebalancing, so a test's own client among them is shed
// sooner or later. The connections stop when the test ends, or stop is
// called.
func Crowd(t testing.TB, url string, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := client.Dial(ctx, url, nil)
				if err != nil {
					select { // the node is not there (yet, or any more)
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				closeOnCancel := context.AfterFunc(ctx, func() { _ = c.Close() })
				for {
					if _, err := c.Read(time.Time{}); err != nil {
						break
					}
				}
				closeOnCancel()
				_ = c.Close()
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}
