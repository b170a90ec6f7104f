package sae

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

// Default quota: SAE allows 60 calls per minute per account for all its APIs
// together, shared with deploys, Terraform and the console; we take half.
const (
	DefaultQuotaPerMinute = 30
	DefaultBurst          = 3
	// defaultThrottlePause is how long the whole account pauses after a
	// Throttling error that carried no x-acs-retry-after hint.
	defaultThrottlePause = 5 * time.Second
	// maxThrottlePause caps a server's retry-after hint.
	maxThrottlePause = 60 * time.Second
)

// Limiter is one account's SAE call budget: a token bucket shared by every
// caller and by every region's Client of that account. Time is the Clock's,
// so a Scaled clock speeds it up with the rest of an emulated run. It is safe
// for concurrent use.
type Limiter struct {
	clk    clock.Clock
	onWait func(time.Duration)

	mu      sync.Mutex
	lim     *rate.Limiter
	pausedT time.Time // no call starts before this (after Throttling)
	waited  time.Duration
	waits   int64
	calls   int64
}

// NewLimiter returns a bucket of perMinute calls per minute with the given
// burst. perMinute <= 0 means DefaultQuotaPerMinute; burst <= 0 means
// min(DefaultBurst, perMinute). A nil clk means clock.Real{}. onWait, if not
// nil, is called with every non-zero wait (for metrics).
func NewLimiter(perMinute, burst int, clk clock.Clock, onWait func(time.Duration)) *Limiter {
	if perMinute <= 0 {
		perMinute = DefaultQuotaPerMinute
	}
	if burst <= 0 {
		burst = min(DefaultBurst, perMinute)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	l := &Limiter{clk: clk, onWait: onWait}
	// The bucket starts full; rate.Limiter only ever sees the clock's times.
	l.lim = rate.NewLimiter(rate.Limit(float64(perMinute)/60), burst)
	return l
}

// Wait takes one token, sleeping on the clock until one is available or a
// Throttling pause (see Pause) is over. It returns ctx.Err() if ctx ends
// first; the token is then given back.
func (l *Limiter) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := l.clk.Now()
	l.mu.Lock()
	var pause time.Duration
	if l.pausedT.After(now) {
		pause = l.pausedT.Sub(now)
	}
	// Reserve at the end of the pause so that callers queued behind a pause
	// are still spaced out by the bucket when it ends.
	r := l.lim.ReserveN(now.Add(pause), 1)
	l.calls++
	l.mu.Unlock()
	if !r.OK() {
		// Only possible with burst 0, which NewLimiter never builds.
		return context.DeadlineExceeded
	}
	d := pause + r.DelayFrom(now.Add(pause))
	if d <= 0 {
		return nil
	}
	l.mu.Lock()
	l.waits++
	l.waited += d
	l.mu.Unlock()
	if l.onWait != nil {
		l.onWait(d)
	}
	if err := l.clk.Sleep(ctx, d); err != nil {
		r.CancelAt(l.clk.Now())
		return err
	}
	return nil
}

// Pause stops every caller of the account from starting a call for d (capped
// at one minute): SAE said Throttling, so the account's budget is spent
// elsewhere too. A shorter pause never shortens a longer one.
func (l *Limiter) Pause(d time.Duration) {
	if d <= 0 {
		return
	}
	d = min(d, maxThrottlePause)
	until := l.clk.Now().Add(d)
	l.mu.Lock()
	if until.After(l.pausedT) {
		l.pausedT = until
	}
	l.mu.Unlock()
}

// Stats returns how many calls took a token, how many of them had to wait,
// and the total time waited.
func (l *Limiter) Stats() (calls, waits int64, waited time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls, l.waits, l.waited
}
