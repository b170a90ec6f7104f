package jobs

import "time"

// Result is the outcome of a run or of one app within it. These strings are
// the values of the `result` metric label.
type Result string

// The results.
const (
	ResultSuccess           Result = "success"
	ResultFailed            Result = "failed"
	ResultPartial           Result = "partial"
	ResultSkipped           Result = "skipped"
	ResultDeadlineExceeded  Result = "deadline_exceeded"
	ResultNeedsConfirmation Result = "needs_confirmation"
	ResultCancelled         Result = "cancelled"
	ResultInterrupted       Result = "interrupted"
)

// Skip reasons (the `reason` label of skipped_runs_total) and other reasons.
const (
	ReasonOverlap        = "overlap"
	ReasonLockBusy       = "lock_busy"
	ReasonMissedDeadline = "missed_deadline"
	ReasonSuspended      = "suspended"
	ReasonDSTGap         = "dst_gap"
	ReasonNotDeployed    = "not_deployed"
	ReasonAppStopped     = "app_stopped"
	// Failure codes of our own (SAE's codes are used as they are).
	CodeMinReadyUnsatisfiable = "min_ready_unsatisfiable"
	CodeNoMatch               = "no_app_matched"
	CodeHealthGate            = "health_gate_failed"
	CodeChangeOrderFailed     = "change_order_failed"
	CodeStuck                 = "change_order_stuck"
	// Added with the rollout loop.
	ReasonAllFresh      = "all_fresh"      // success: every instance is younger than min_age
	ReasonFailureBudget = "failure_budget" // skipped: max_failed_apps reached before the app started
	ReasonRunAborted    = "run_aborted"    // skipped: an account error ended the run before the app started
	CodeBatchTimeout    = "batch_timeout"  // our change order still running past batch_timeout (left alone)
	CodeAmbiguous       = "ambiguous"      // RestartInstances may or may not have been carried out
	CodeJournal         = "journal"        // the journal could not record a batch
	CodeUnresolved      = "unresolved"     // the app could not be resolved or listed, or a resumed batch's submit cannot be told
	// Added with resume.
	ReasonCrash = "crash" // interrupted: a Failpoint simulated a crash (tests)
)

// RunOutcome is what one run did.
type RunOutcome struct {
	Schedule    string       `json:"schedule"`
	ScheduledAt time.Time    `json:"scheduled_at"`
	Started     time.Time    `json:"started"`
	Ended       time.Time    `json:"ended"`
	Result      Result       `json:"result"`
	Reason      string       `json:"reason,omitempty"`
	Apps        []AppOutcome `json:"apps"`
}

// AppOutcome is what one run did to one application.
type AppOutcome struct {
	App          App            `json:"app"`
	Result       Result         `json:"result"`
	Reason       string         `json:"reason,omitempty"`  // skip reason or our own failure code
	Code         string         `json:"code,omitempty"`    // SAE's error code when SAE refused
	Message      string         `json:"message,omitempty"` // SAE's or our message
	Restarted    []string       `json:"restarted,omitempty"`
	NotRestarted []string       `json:"not_restarted,omitempty"`
	Vanished     []string       `json:"vanished,omitempty"` // planned, gone before their batch (not restarted by us)
	ChangeOrders []string       `json:"change_orders,omitempty"`
	Reattached   []string       `json:"reattached,omitempty"` // change orders of the interrupted run that Resume watched to their end
	Batches      []BatchOutcome `json:"batches,omitempty"`
	Started      time.Time      `json:"started"`
	Ended        time.Time      `json:"ended"`
}

// BatchOutcome is one batch's record.
type BatchOutcome struct {
	Index         int       `json:"index"` // 1-based
	Instances     []string  `json:"instances"`
	ChangeOrderID string    `json:"change_order_id,omitempty"`
	Result        Result    `json:"result"`
	Code          string    `json:"code,omitempty"`
	Submitted     time.Time `json:"submitted"`
	Ended         time.Time `json:"ended"`
}
