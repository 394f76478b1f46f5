package bus

import (
	"time"

	"github.com/roomcast/roomcast/internal/lograte"
)

// SetRefusedLogClock gives the limiter of refused live messages' log
// lines the clock now, so that a test can move to the next interval.
func SetRefusedLogClock(b *Bus, now func() time.Time) {
	b.live.refusedLog = lograte.New(refusedLogInterval, now)
}

// RefusedLogInterval is refusedLogInterval, for the tests outside.
const RefusedLogInterval = refusedLogInterval

// SetBadPayloadLogClock is SetRefusedLogClock for events with a bad
// payload.
func SetBadPayloadLogClock(b *Bus, now func() time.Time) {
	b.badPayloadLog = lograte.New(badPayloadLogInterval, now)
}
