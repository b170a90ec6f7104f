// Package jobs is the domain of the scheduler: schedules, plans, batches and
// outcomes, the pure decisions (what a change-order status means, how big the
// next batch is, how long to back off) and the rollout loop.
//
// It declares the interfaces it consumes — SAE (internal/sae implements it on
// the official SDK), Observer (metrics, logs) — and imports no adapter.
//
// A run's lifecycle: due -> started -> apps resolved -> per app: plan ->
// batches (lock wait -> submit -> change-order wait -> health gate -> pause) ->
// app outcome -> run outcome.
//
// The pure decisions are PlanApp (which instances, which batches),
// ClassifyChangeOrder, JudgeHealth (the health gate), Backoff,
// LockPollInterval and the Pollers. Runner.Run drives them against SAE:
// per app, DescribeApplicationStatus (stopped? someone else's change order?
// wait for it), ListInstances and the plan, then per batch: Journal.BatchPlanned,
// RestartInstances, Journal.ChangeOrderRecorded, DescribeChangeOrder until
// terminal (adaptive polling), ListInstances for the health gate, and the
// pause, measured from the change order's end as SAE reports it. Between the
// app's own batches the lock is not pre-checked: RestartInstances refusing
// with the lock (ClassLock) is SAE's own, race-free check and starts the
// same lock wait.
//
// # Crash-safe resume
//
// Each batch is journalled write-ahead (Journal): BatchPlanned before
// RestartInstances, ChangeOrderRecorded right after it returns, one row per
// batch index naming exactly the instances submitted. After a crash the
// daemon reads the run's record into a Prior and, while the run's window is
// open, calls Runner.Resume, which shares Run's rollout loop: ended apps are
// kept; per app in progress, recorded change orders are re-attached, batches
// recorded without one are resolved with FindRestartChangeOrder before
// anything is submitted (found: recorded and re-attached; absent: submitted
// under their row; cannot tell: the app fails unresolved); then the plan's
// instances no batch covered, still listed, are batched after the recorded
// ones. Past the window, Interrupted builds the outcome without SAE.
//
// Runner.Failpoint names the crash points (FailpointBeforeSubmit,
// FailpointAfterSubmit, FailpointChangeOrderWait, FailpointHealthGate,
// FailpointBetweenBatches) so crash tests can stop the process exactly
// there; a Failpoint that panics with ErrCrash simulates the crash
// in-process.
package jobs
