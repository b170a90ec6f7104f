package jobs

import (
	"context"
	"time"
)

// BatchRecord identifies one batch of one run: the run's idempotency key
// (Schedule, ScheduledAt) plus the app and the batch index.
type BatchRecord struct {
	Schedule    string
	ScheduledAt time.Time
	App         App
	Batch       int // 1-based
	Instances   []string
	// Planned is when the rollout planned the batch (its clock), just before
	// the submit: the earliest its change order can have been created.
	Planned time.Time
}

// Journal records a run's batches durably so a crashed daemon re-attaches to
// its change orders instead of restarting instances twice. The rollout loop
// calls it write-ahead:
//
//   - BatchPlanned before RestartInstances. If it fails, the batch is not
//     submitted (the app fails with code "journal"). It is called once per
//     (run, app, batch index), with exactly the instances submitted: a
//     resubmit of the same instances (after a refusal, or by Resume of a
//     batch never carried out) goes under the existing row; a batch whose
//     instances changed takes the next index. A journal may therefore refuse
//     a second BatchPlanned of an index (the SQLite store does).
//   - ChangeOrderRecorded right after RestartInstances returned an ID, and
//     by Resume for a change order it found for a batch recorded without
//     one. If it fails, the change order is still watched to its end (it
//     exists at SAE whatever the journal says) and the app stops after it.
//
// The batches' ends and the apps' outcomes reach a journal through the
// Observer events (EventBatchEnded, EventAppEnded, EventRunEnded).
//
// Crash windows: a crash between BatchPlanned and the submit leaves a planned
// batch with no change order — recovery must ask SAE
// (FindRestartChangeOrder) before submitting again. A crash between the
// submit and ChangeOrderRecorded is the same case. A crash after
// ChangeOrderRecorded leaves the ID: recovery re-attaches with
// DescribeChangeOrder.
type Journal interface {
	BatchPlanned(ctx context.Context, b BatchRecord) error
	ChangeOrderRecorded(ctx context.Context, b BatchRecord, changeOrderID string) error
}

// NopJournal records nothing.
type NopJournal struct{}

// BatchPlanned implements Journal.
func (NopJournal) BatchPlanned(context.Context, BatchRecord) error { return nil }

// ChangeOrderRecorded implements Journal.
func (NopJournal) ChangeOrderRecorded(context.Context, BatchRecord, string) error { return nil }

// AppLimiter caps the app rollouts running at once across every run of the
// daemon. The zero value and nil are unlimited.
type AppLimiter struct{ slots chan struct{} }

// NewAppLimiter returns a limiter of n slots; n <= 0 means unlimited.
func NewAppLimiter(n int) *AppLimiter {
	if n <= 0 {
		return &AppLimiter{}
	}
	return &AppLimiter{slots: make(chan struct{}, n)}
}

// Acquire takes a slot, waiting for one; it returns ctx.Err() if ctx ends first.
func (l *AppLimiter) Acquire(ctx context.Context) error {
	if l == nil || l.slots == nil {
		return ctx.Err()
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back a slot taken by Acquire.
func (l *AppLimiter) Release() {
	if l == nil || l.slots == nil {
		return
	}
	<-l.slots
}
