package jobs

import "time"

// EventKind names a step of a run.
type EventKind string

// The event kinds, in the order a run emits them.
const (
	EventRunStarted      EventKind = "run_started"
	EventAppResolved     EventKind = "app_resolved"      // App set
	EventAppStarted      EventKind = "app_started"       // App: its rollout begins (a slot is taken)
	EventLockWaitStarted EventKind = "lock_wait_started" // App, ChangeOrderID of the holder if known
	EventLockWaitEnded   EventKind = "lock_wait_ended"   // App, Duration
	EventBatchSubmitted  EventKind = "batch_submitted"   // App, Batch, ChangeOrderID, Instances
	EventBatchReattached EventKind = "batch_reattached"  // Resume: App, Batch, ChangeOrderID, Instances of a change order the interrupted run submitted
	EventBatchEnded      EventKind = "batch_ended"       // App, Batch, Result, Duration (change-order wait)
	EventAppEnded        EventKind = "app_ended"         // AppOutcome
	EventRunEnded        EventKind = "run_ended"         // Run
)

// Event is one step of a run, given to an Observer. Fields that do not apply
// to a kind are zero.
type Event struct {
	Kind          EventKind
	Time          time.Time
	Schedule      string
	ScheduledAt   time.Time
	App           App
	Batch         int // 1-based
	Batches       int // total batches planned for the app
	Instances     []string
	ChangeOrderID string
	Result        Result
	Reason        string
	Duration      time.Duration
	AppOutcome    *AppOutcome
	Run           *RunOutcome
}

// Observer receives a run's events (metrics, logs, the journal's mirror).
// Observe must not block for long; it is called from the run's goroutines.
type Observer interface {
	Observe(Event)
}

// Observers fans one event out to several observers.
type Observers []Observer

// Observe calls every observer in order.
func (os Observers) Observe(e Event) {
	for _, o := range os {
		if o != nil {
			o.Observe(e)
		}
	}
}
