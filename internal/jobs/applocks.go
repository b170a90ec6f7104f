package jobs

import (
	"context"
	"sync"
)

// AppLocks makes sure two runs never restart the same application at the
// same time (two schedules may target one app). SAE's own change-order lock
// would refuse the second anyway, but then the two runs' batches interleave
// and min_ready arithmetic, made for one rollout, no longer holds.
// The zero value is not usable; use NewAppLocks. Safe for concurrent use.
type AppLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed on release
}

// NewAppLocks returns an empty lock table.
func NewAppLocks() *AppLocks { return &AppLocks{held: map[string]chan struct{}{}} }

// Lock waits until appID is free, then holds it. It returns ctx.Err() if ctx
// ends first. The returned release must be called exactly once.
func (l *AppLocks) Lock(ctx context.Context, appID string) (release func(), err error) {
	for {
		l.mu.Lock()
		ch, busy := l.held[appID]
		if !busy {
			mine := make(chan struct{})
			l.held[appID] = mine
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					delete(l.held, appID)
					l.mu.Unlock()
					close(mine)
				})
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Busy reports whether appID is held.
func (l *AppLocks) Busy(appID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[appID]
	return ok
}
