package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/natsembed"
)

// streamReader reads what the stream holds, as user edge (the JetStream
// API of stream ROOMCAST is all natsconf/accounts.conf lets it use). Each
// event is read with a message get, which only the stream leader answers:
// the authority on what is stored, and another path than the batched
// direct gets, answered by any replica, that the edges serve clients from.
type streamReader struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// newStreamReader connects to the cluster through the test's dialer.
func newStreamReader(c *cluster) (*streamReader, error) {
	nc, err := nats.Connect(edgeNATSURLs, nats.Name("integration stream reader"),
		nats.UserInfo("edge", c.pw.edge), nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix),
		nats.SetCustomDialer(c), nats.SkipHostLookup(), nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3), nats.Timeout(2*time.Second),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // not nats.go's print to stderr
	if err != nil {
		return nil, fmt.Errorf("stream reader: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &streamReader{nc: nc, js: js}, nil
}

func (r *streamReader) Close() { r.nc.Close() }

// stored is one event as the stream holds it: its sequence and the number
// the publisher gave it.
type stored struct {
	Seq uint64
	N   int
}

// info is the stream's state as its leader reports it.
func (r *streamReader) info(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, "ROOMCAST")
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// healthy reports whether the stream has a leader and both other replicas
// online and current, or why not.
func (r *streamReader) healthy(ctx context.Context) error {
	info, err := r.info(ctx)
	switch {
	case err != nil:
		return err
	case info.Cluster == nil || info.Cluster.Leader == "":
		return errors.New("the stream has no leader")
	case len(info.Cluster.Replicas) != 2:
		return fmt.Errorf("the stream has %d replicas besides its leader, want 2", len(info.Cluster.Replicas))
	}
	for _, p := range info.Cluster.Replicas {
		if !p.Current || p.Offline {
			return fmt.Errorf("replica %s: current %v, offline %v, lag %d", p.Name, p.Current, p.Offline, p.Lag)
		}
	}
	return nil
}

// leader is the name of the stream leader.
func (r *streamReader) leader(ctx context.Context) (string, error) {
	info, err := r.info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", errors.New("the stream has no leader")
	}
	return info.Cluster.Leader, nil
}

// rooms reads every room's stored events, a few rooms at a time.
func (r *streamReader) rooms(ctx context.Context, rooms []string) (map[string][]stored, error) {
	out := make(map[string][]stored, len(rooms))
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, room := range rooms {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			evs, err := r.room(ctx, room)
			mu.Lock()
			defer mu.Unlock()
			out[room], errs = evs, append(errs, err)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// room reads one room's stored events in order: the leader's first event
// of the room's subject at or after a sequence, again and again.
func (r *streamReader) room(ctx context.Context, room string) ([]stored, error) {
	subject := roomSubject(room)
	var out []stored
	for seq := uint64(1); ; {
		m, found, err := r.leaderNext(ctx, subject, seq)
		if err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", room, seq, err)
		}
		if !found {
			return out, nil
		}
		var p struct {
			Data struct {
				N int `json:"n"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &p); err != nil {
			return nil, fmt.Errorf("%s seq %d: payload %q: %w", room, m.Seq, m.Data, err)
		}
		out = append(out, stored{Seq: m.Seq, N: p.Data.N})
		seq = m.Seq + 1
	}
}

// roomSubject is the subject a room's events are published to (docs/protocol.md
// section 2, default prefix).
func roomSubject(room string) string {
	kind, id, _ := strings.Cut(room, ":")
	return "roomcast.rooms." + kind + "." + id
}

// leaderMsg is the part of JetStream's message get answer the reader uses.
type leaderMsg struct {
	Seq  uint64 `json:"seq"`
	Data []byte `json:"data"`
}

// leaderNext asks the stream leader for the first message of subject at
// or after seq, retrying while the stream has no leader to answer (a
// request that times out), within ctx.
func (r *streamReader) leaderNext(ctx context.Context, subject string, seq uint64) (leaderMsg, bool, error) {
	req, _ := json.Marshal(map[string]any{"seq": seq, "next_by_subj": subject})
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := r.nc.RequestWithContext(rctx, "$JS.API.STREAM.MSG.GET.ROOMCAST", req)
		cancel()
		if err != nil {
			select { // retried until ctx ends
			case <-ctx.Done():
				return leaderMsg{}, false, err
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		var a struct {
			Message *leaderMsg `json:"message"`
			Error   *struct {
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &a); err != nil {
			return leaderMsg{}, false, err
		}
		switch {
		case a.Error != nil && a.Error.ErrCode == 10037: // no message found
			return leaderMsg{}, false, nil
		case a.Error != nil:
			return leaderMsg{}, false, fmt.Errorf("message get: %s (%d)", a.Error.Description, a.Error.ErrCode)
		case a.Message == nil:
			return leaderMsg{}, false, errors.New("message get: empty answer")
		}
		return *a.Message, true, nil
	}
}
