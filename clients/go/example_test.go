package roomcast_test

import (
	"context"
	"fmt"
	"log"

	roomcast "github.com/roomcast/roomcast/clients/go"
)

// Follow a room from its retained history on: print its events and the
// subscribe response, and what the client tells.
func Example() {
	node := startExampleNode() // a node on loopback; yours is at ws://host:8690
	defer node.stop()
	node.publish("roomcast.rooms.pool.p1", `{"event":"worker.status_changed","data":{"worker_id":"w1","status":"busy","pool_id":"p1"}}`)

	ctx := context.Background()
	c, err := roomcast.Connect(ctx, roomcast.Options{URLs: []string{node.url}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe("pool:p1", roomcast.SubscribeOptions{History: true}); err != nil {
		log.Fatal(err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			log.Fatal(err) // a *roomcast.StopError: the client stopped for good
		}
		switch m := m.(type) {
		case *roomcast.Event:
			fmt.Println(m.Room, m.Seq, m.Name, string(m.Data))
		case *roomcast.Subscribed:
			// Store m.Epoch with the seqs that follow to resume later.
			fmt.Println("subscribed to", m.Room, "recovered:", m.Recovered)
			return
		case *roomcast.Notice:
			fmt.Println("notice:", m.Kind)
		}
	}
	// Output:
	// notice: connected
	// pool:p1 1 worker.status_changed {"worker_id":"w1","status":"busy","pool_id":"p1"}
	// subscribed to pool:p1 recovered: true
}
