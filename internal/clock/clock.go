// Package clock abstracts time so that code which waits can be driven by a
// fake clock in unit tests and by a scaled clock in emulated end-to-end runs.
//
// Every wait in the daemon goes through Clock.Sleep, which returns ctx.Err()
// when the context ends first, so every wait is cancellable.
package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done; it returns ctx.Err() in the latter case.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sleep waits for d or ctx.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Scaled runs time faster than the wall clock: every real second counts as
// Factor emulated seconds, starting at Origin. It lets tests and benchmarks
// model 30–90 s restarts in milliseconds while keeping the relative order of
// events. Share one Scaled between the emulator and the daemon under test.
type Scaled struct {
	Origin time.Time // emulated time at Start
	Factor float64   // emulated seconds per real second (>= 1)
	start  time.Time // real time at construction
}

// NewScaled returns a clock that starts at origin and runs factor times faster than real time.
func NewScaled(origin time.Time, factor float64) *Scaled {
	if factor <= 0 {
		factor = 1
	}
	return &Scaled{Origin: origin, Factor: factor, start: time.Now()}
}

// Now returns the emulated time.
func (s *Scaled) Now() time.Time {
	el := time.Since(s.start)
	return s.Origin.Add(time.Duration(float64(el) * s.Factor))
}

// Sleep waits for d emulated time (d/Factor real time) or ctx.
func (s *Scaled) Sleep(ctx context.Context, d time.Duration) error {
	return Real{}.Sleep(ctx, time.Duration(float64(d)/s.Factor))
}

// Fake is a manually advanced clock for unit tests. Sleepers wake when
// Advance moves the time to or past their deadline.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
	changed chan struct{} // closed and replaced whenever the waiter set changes
}

type waiter struct {
	at time.Time
	ch chan struct{}
}

// NewFake returns a fake clock set at t.
func NewFake(t time.Time) *Fake { return &Fake{now: t, changed: make(chan struct{})} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Sleep blocks until Advance passes now+d or ctx ends.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	f.mu.Lock()
	w := &waiter{at: f.now.Add(d), ch: make(chan struct{})}
	f.waiters = append(f.waiters, w)
	f.notifyLocked()
	f.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for i, x := range f.waiters {
			if x == w {
				f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
				break
			}
		}
		f.notifyLocked()
		f.mu.Unlock()
		return ctx.Err()
	}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Advance moves the clock forward by d and wakes every sleeper whose deadline has passed.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.at.After(f.now) {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
	f.notifyLocked()
}

// Waiters reports how many goroutines are sleeping on the clock.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil waits until at least n goroutines sleep on the clock, or ctx ends.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		got, ch := len(f.waiters), f.changed
		f.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AdvanceToNext moves the clock to the earliest sleeper's deadline and wakes it.
// It reports false when nobody sleeps.
func (f *Fake) AdvanceToNext() bool {
	f.mu.Lock()
	if len(f.waiters) == 0 {
		f.mu.Unlock()
		return false
	}
	ws := append([]*waiter(nil), f.waiters...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].at.Before(ws[j].at) })
	d := ws[0].at.Sub(f.now)
	f.mu.Unlock()
	if d < 0 {
		d = 0
	}
	f.Advance(d)
	return true
}
