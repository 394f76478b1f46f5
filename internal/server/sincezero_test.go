package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// A subscribe with since 0 asks for the room's whole history. When the
// stream no longer holds it (purged, or deleted and recreated), the answer
// says recovered: false, even when the room holds nothing now and nothing
// is replayed; before, it said true (issue 17).
func TestSinceZeroAfterTheHistoryWasLostIsNotRecovered(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, url string)
	}{
		{"purged", func(t *testing.T, url string) {
			st, err := streamAdmin(t, url).Stream(t.Context(), "ROOMCAST")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Purge(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted and recreated", func(t *testing.T, url string) {
			js := streamAdmin(t, url)
			if err := js.DeleteStream(t.Context(), "ROOMCAST"); err != nil {
				t.Fatal(err)
			}
			natstest.WaitFor(t, 20*time.Second, func() error {
				_, err := js.Stream(t.Context(), "ROOMCAST") // the edge recreates it
				return err
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.RunServer(t)
			srv := startNode(t, ns, nil)
			pub := newPublisher(t, ns.ClientURL())
			const room = "pool:lost"
			for i := range 3 {
				pub.event(room, "e", i)
			}
			zero := uint64(0)
			if res, replay := subscribe(t, dial(t, srv), room, &zero); !res.Recovered || len(replay) != 3 {
				t.Fatalf("since 0 on a whole stream: %+v, %d events; want recovered and 3", res, len(replay))
			}

			tc.lose(t, ns.ClientURL())
			// A node that never saw the events finds the room empty and
			// replays nothing; the node that delivered them may still
			// replay them from its memory. Both say the history is not
			// whole once they know (the stream's state they share among
			// resumes is at most a second old).
			other := startNode(t, ns, nil)
			for name, node := range map[string]*server.Server{"the node that saw the events": srv, "a fresh node": other} {
				var res wire.SubscribeResult
				var replay []wire.Message
				natstest.WaitFor(t, 10*time.Second, func() error {
					if res, replay = subscribe(t, dial(t, node), room, &zero); res.Recovered {
						return fmt.Errorf("%s: since 0 after the history was lost: %+v, want recovered false", name, res)
					}
					return nil
				})
				if node == other && len(replay) != 0 {
					t.Fatalf("%s replayed %d events the stream no longer holds", name, len(replay))
				}
			}
		})
	}
}
