package bus

import (
	"context"
)

// A replay asks for its next batch as soon as it has the current one,
// and delivers the current one meanwhile, so the stream's answer and the
// delivery to a client overlap instead of taking turns. Each answer is
// still read whole by direct before anything of it is delivered, under
// its own read slot and timeout, so neither covers a client slow to take
// the events; a replay holds at most the batch it delivers and the next.

// prefetch is a batch asked for ahead of its turn.
type prefetch struct {
	start  uint64 // the sequence the batch starts at
	cancel context.CancelFunc
	done   chan fetched // receives the answer once, then nothing
}

// fetched is one direct get's outcome.
type fetched struct {
	msgs []storedMsg
	end  batchEnd
	err  error
}

// request is the direct get of the batch starting at start.
func (rd *reader) request(start uint64) directRequest {
	return directRequest{Seq: start, NextFor: rd.subject, Batch: ReplayBatch + 1, MaxBytes: maxBatchBytes}
}

// prefetch asks for the batch starting at start in the background.
func (rd *reader) prefetch(ctx context.Context, start uint64) {
	rd.dropPrefetch()
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetch{start: start, cancel: cancel, done: make(chan fetched, 1)}
	rd.next = p
	go func() {
		msgs, end, err := rd.read(ctx, start)
		p.done <- fetched{msgs, end, err}
	}()
}

// fetch returns the batch starting at start: the one asked for ahead if
// it starts there, otherwise asked for now.
func (rd *reader) fetch(ctx context.Context, start uint64) ([]storedMsg, batchEnd, error) {
	if p := rd.next; p != nil && p.start == start {
		select {
		case f := <-p.done:
			rd.next = nil
			p.cancel()
			return f.msgs, f.end, f.err
		case <-ctx.Done():
			rd.dropPrefetch()
			return nil, batchEnd{}, ctx.Err()
		}
	}
	rd.dropPrefetch()
	return rd.read(ctx, start)
}

// read asks for the batch starting at start (after it, from a consumer),
// now.
func (rd *reader) read(ctx context.Context, start uint64) ([]storedMsg, batchEnd, error) {
	if rd.get != nil {
		return rd.get(ctx, start)
	}
	return rd.b.direct(ctx, rd.request(start))
}

// dropPrefetch abandons a batch asked for ahead and waits for its
// goroutine, which the cancel ends at once (every wait of a direct get
// ends with its context): its read slot is free, and no request goes out
// for a replay that has ended, when this returns.
func (rd *reader) dropPrefetch() {
	if p := rd.next; p != nil {
		rd.next = nil
		p.cancel()
		<-p.done
	}
}
