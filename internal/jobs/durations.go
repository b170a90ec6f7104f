package jobs

import (
	"sync"
	"time"
)

// durationsKept is how many of an app's latest change-order durations are remembered.
const durationsKept = 10

// Durations remembers how long each app's restart change orders took, across
// runs, so that the first batch of tonight's run is polled near last night's
// durations instead of being probed from scratch (each probe is a call of the
// account's 60 per minute). The daemon keeps one for its lifetime (reloads
// included). Safe for concurrent use; a nil *Durations remembers nothing.
type Durations struct {
	mu sync.Mutex
	m  map[string][]time.Duration
}

// NewDurations returns an empty memory.
func NewDurations() *Durations { return &Durations{m: map[string][]time.Duration{}} }

// Of returns a copy of the app's remembered durations, oldest first.
func (d *Durations) Of(appID string) []time.Duration {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Duration(nil), d.m[appID]...)
}

// Add remembers one change order's duration for the app.
func (d *Durations) Add(appID string, v time.Duration) {
	if d == nil || v <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h := append(d.m[appID], v)
	if len(h) > durationsKept {
		h = h[len(h)-durationsKept:]
	}
	d.m[appID] = h
}
