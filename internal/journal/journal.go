package journal

import (
	"context"
	"errors"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// Errors of the Store contract. Backends wrap them; callers use errors.Is.
var (
	// ErrFenced: the store's lease generation is older than the current
	// lease's, so another holder has taken over; the write was not made.
	// A holder that sees it must stop acting (no SAE mutation either).
	ErrFenced = errors.New("journal: fenced by a newer lease generation")
	// ErrNotFound: the run, app or batch does not exist.
	ErrNotFound = errors.New("journal: not found")
	// ErrRunEnded: the run has ended; its batches and apps are no longer written.
	ErrRunEnded = errors.New("journal: run already ended")
	// ErrConflict: the write contradicts what is recorded (a batch planned
	// twice, a second change-order ID for a batch, an app ended twice).
	ErrConflict = errors.New("journal: conflicts with the record")
)

// RunKey is a run's idempotency key: a schedule and the scheduled instant it
// fires for. Backends compare ScheduledAt at nanosecond precision in UTC.
type RunKey struct {
	Schedule    string    `json:"schedule"`
	ScheduledAt time.Time `json:"scheduled_at"`
}

// String is the key as the daemon names runs: "nightly.20240310T020000Z".
func (k RunKey) String() string {
	return k.Schedule + "." + k.ScheduledAt.UTC().Format("20060102T150405Z")
}

// RunRecord is what BeginRun records of a run before its first SAE call.
type RunRecord struct {
	// Plan is the run's plan as far as it is known at the start: apps,
	// batches and instance IDs. It is stored as JSON and returned by OpenRuns.
	Plan     []jobs.AppPlan `json:"plan"`
	Started  time.Time      `json:"started"`
	Deadline time.Time      `json:"deadline"` // scheduled instant + window: no new batch after it
	Manual   bool           `json:"manual"`
}

// BatchState is where a batch stands in the write-ahead protocol.
type BatchState string

// The batch states, in order.
const (
	// BatchSubmitting: planned, RestartInstances may or may not have been
	// called. Resume must ask SAE (FindRestartChangeOrder) before any resubmit.
	BatchSubmitting BatchState = "submitting"
	// BatchSubmitted: SAE returned a change order; resume re-attaches to it.
	BatchSubmitted BatchState = "submitted"
	// BatchEnded: the batch has a result.
	BatchEnded BatchState = "ended"
)

// Batch is one recorded batch of a run.
type Batch struct {
	App           string      `json:"app"` // the app ID
	Index         int         `json:"index"`
	Instances     []string    `json:"instances"`
	State         BatchState  `json:"state"`
	ChangeOrderID string      `json:"change_order_id,omitempty"`
	Submitted     time.Time   `json:"submitted"`
	Result        jobs.Result `json:"result,omitempty"`
	Code          string      `json:"code,omitempty"`
	Ended         time.Time   `json:"ended"`
	Generation    int64       `json:"generation"` // of the last write
}

// OpenRun is a run that has not ended: what resume starts from.
type OpenRun struct {
	ID         int64             `json:"id"`
	Key        RunKey            `json:"key"`
	Record     RunRecord         `json:"record"`
	Batches    []Batch           `json:"batches"` // by app, then index
	Apps       []jobs.AppOutcome `json:"apps"`    // apps already ended, in EndApp order
	Generation int64             `json:"generation"`
}

// Unresolved returns the batches in the crash window between the submit
// and its record: planned, with no change order recorded and no result.
func (r OpenRun) Unresolved() []Batch {
	var out []Batch
	for _, b := range r.Batches {
		if b.State == BatchSubmitting {
			out = append(out, b)
		}
	}
	return out
}

// InFlight returns the batches with a recorded change order and no result:
// resume re-attaches to them, never resubmits.
func (r OpenRun) InFlight() []Batch {
	var out []Batch
	for _, b := range r.Batches {
		if b.State == BatchSubmitted {
			out = append(out, b)
		}
	}
	return out
}

// RunFilter selects history. A zero filter is every schedule, no limit.
type RunFilter struct {
	Schedule string // "" for every schedule
	Limit    int    // <= 0 for no limit
}

// RunSummary is one line of history: a run (open or ended) or a recorded
// skipped/missed fire (Fire true: no batches, Started = Ended = ScheduledAt).
type RunSummary struct {
	ID           int64         `json:"id"`
	Schedule     string        `json:"schedule"`
	ScheduledAt  time.Time     `json:"scheduled_at"`
	Manual       bool          `json:"manual,omitempty"`
	Fire         bool          `json:"fire,omitempty"`
	Started      time.Time     `json:"started"`
	Ended        time.Time     `json:"ended,omitzero"`    // zero while open
	Duration     time.Duration `json:"duration_ns"`       // Ended - Started; 0 while open
	Result       jobs.Result   `json:"result,omitempty"`  // "" while open
	Reason       string        `json:"reason,omitempty"`  // skip reason or run reason
	Apps         int           `json:"apps"`              // apps in the outcome (ended apps while open)
	Restarted    int           `json:"restarted"`         // instances restarted (successful batches while open)
	ChangeOrders []string      `json:"change_orders"`     // in submit order
	Deadline     time.Time     `json:"deadline,omitzero"` // zero for fires
}

// Key returns the run's idempotency key.
func (s RunSummary) Key() RunKey { return RunKey{Schedule: s.Schedule, ScheduledAt: s.ScheduledAt} }

// ScheduleTimes are the timestamps alerting depends on, per schedule. A zero
// time means never. They survive Prune.
type ScheduleTimes struct {
	LastRun       time.Time `json:"last_run"`       // when the last run ended, whatever its result
	LastSuccess   time.Time `json:"last_success"`   // when the last successful run ended
	LastScheduled time.Time `json:"last_scheduled"` // the latest scheduled instant begun or recorded as a fire
}

// Store is the durable run journal. Implementations are safe for concurrent
// use. Every write is made under the store's lease generation: when a newer
// generation holds the lease, the write is not made and the error wraps
// ErrFenced. Reads are not fenced.
//
// Times are stored at nanosecond precision and returned in UTC.
type Store interface {
	// BeginRun records a run before its first SAE call. It is idempotent on
	// key: if the key already has a run (open or ended) or a recorded fire,
	// it returns that row's ID with created=false and records nothing, and
	// the caller must not start another run for the key (resume an open one
	// from OpenRuns instead).
	BeginRun(ctx context.Context, key RunKey, rec RunRecord) (runID int64, created bool, err error)
	// PlanBatch is the write-ahead row, written before RestartInstances:
	// state submitting. index is 1-based. It returns ErrNotFound for an
	// unknown run, ErrRunEnded for an ended one, and ErrConflict if the batch
	// exists already: a batch is planned once, so it is submitted at most once.
	PlanBatch(ctx context.Context, runID int64, app string, index int, instanceIDs []string, submittedAt time.Time) error
	// RecordChangeOrder records the change order SAE returned for a batch,
	// right after RestartInstances returned: state submitted. Recording the
	// same ID again is a no-op; another ID is ErrConflict. ErrNotFound if the
	// batch was not planned; ErrRunEnded if the run has ended.
	RecordChangeOrder(ctx context.Context, runID int64, app string, index int, changeOrderID string) error
	// EndBatch records a batch's result: state ended. A batch may end
	// without a change order (the submit was refused). Ending it again
	// replaces the result. ErrNotFound if the batch was not planned;
	// ErrRunEnded if the run has ended.
	EndBatch(ctx context.Context, runID int64, app string, index int, result jobs.Result, code string, ended time.Time) error
	// EndApp records one app's outcome, keyed by out.App.ID. ErrConflict if
	// the app has ended already; ErrNotFound / ErrRunEnded for the run.
	EndApp(ctx context.Context, runID int64, out jobs.AppOutcome) error
	// EndRun records the run's outcome and takes it out of OpenRuns. The
	// schedule's LastRun (and LastSuccess if out.Result is success) become
	// out.Ended. ErrNotFound for an unknown run; ErrRunEnded if it has ended.
	EndRun(ctx context.Context, runID int64, out jobs.RunOutcome) error
	// OpenRuns returns the runs not ended, oldest scheduled first, each with
	// its batches and ended apps.
	OpenRuns(ctx context.Context) ([]OpenRun, error)
	// Runs returns history, newest scheduled first: runs and recorded fires.
	Runs(ctx context.Context, f RunFilter) ([]RunSummary, error)
	// LastTimestamps returns each known schedule's timestamps.
	LastTimestamps(ctx context.Context) (map[string]ScheduleTimes, error)
	// RecordFire records a fire that did not run (result skipped, reason
	// overlap, dst_gap, missed_deadline, suspended, ...). It counts in
	// LastScheduled and shows in history. If the key already has a run or a
	// fire, nothing is recorded and the error is nil: a fire is decided once.
	RecordFire(ctx context.Context, schedule string, scheduledAt time.Time, result jobs.Result, reason string) error
	// LastScheduled returns the latest scheduled instant of the schedule that
	// was begun or recorded as a fire, or the zero time if none.
	LastScheduled(ctx context.Context, schedule string) (time.Time, error)
	// Prune deletes the runs and fires that ended before olderThan, with
	// their batches and apps, and returns how many it deleted. Open runs are
	// kept whatever their age; ScheduleTimes are kept.
	Prune(ctx context.Context, olderThan time.Time) (int, error)
	// Close releases the store. Other methods must not be called after it.
	Close() error
}
