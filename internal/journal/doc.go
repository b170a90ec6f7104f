// Package journal is the durable run journal: what each run planned,
// submitted and ended, written ahead of the SAE calls so a killed daemon
// resumes (re-attaching to its change orders) instead of restarting
// instances twice. Store is the contract; one subpackage per backend
// implements it (sqlite/ now, postgres/ later) and passes the shared
// conformance suite in journaltest/.
//
// # Lifecycle of a run in the journal
//
//	BeginRun(key, record)             run row: open (ended_at NULL)
//	  per app, per batch:
//	    PlanBatch                     batch row: submitting   <- BEFORE RestartInstances
//	    RecordChangeOrder             batch row: submitted    <- RIGHT AFTER it returned
//	    EndBatch                      batch row: ended (result, code)
//	  EndApp                          app row (the AppOutcome)
//	EndRun                            run row: ended (result, outcome, counts)
//
// A fire that does not run (overlap, dst_gap, missed_deadline, suspended) is
// RecordFire: an ended row in the same history, with no batches.
//
// # Idempotency
//
// A run's key is (schedule, scheduled instant), compared at nanosecond
// precision in UTC. BeginRun of a key that exists returns the existing row
// with created=false: a fire delivered twice, or a catch-up of a fire that
// already ran or was recorded as skipped, never becomes a second run.
// PlanBatch of a batch that exists is ErrConflict: a batch is planned once,
// so the rollout loop submits it at most once.
//
// # Write-ahead rule and crash windows
//
// The rollout loop writes the batch row before the SAE call that may restart
// instances, and the ChangeOrderId as soon as the call returns. A crash (kill
// -9, power loss of the process) leaves one of these, which OpenRuns shows
// and resume handles:
//
//   - run open, no batch row for the next batch: the crash came before the
//     write-ahead row, so nothing was submitted. Resume plans the batch again.
//   - batch "submitting" (no change order; OpenRun.Unresolved): the crash
//     came after PlanBatch — before the submit, during it, or after it but
//     before RecordChangeOrder. The submit may have happened. Resume must ask
//     SAE (DescribeApplicationStatus.LastChangeOrderId, then
//     DescribeChangeOrder's CoTargets and CreateTime against the batch row's
//     instances and Submitted — jobs.SAE.FindRestartChangeOrder) before
//     anything is submitted again; found: record it and re-attach; positively
//     absent: submit.
//   - batch "submitted" (change order recorded; OpenRun.InFlight): re-attach
//     with DescribeChangeOrder, never resubmit.
//   - batch "ended", app or run not ended: continue with the next batch or app.
//   - run open past its Deadline (scheduled instant + window): close it with
//     EndRun as interrupted, listing what was left.
//
// # Schema (SQLite; a PostgreSQL backend mirrors it)
//
//	schema_migrations(version PK, applied_at)
//	leases(name PK, generation, holder, acquired_at, expires_at)
//	runs(id PK, schedule, scheduled_at, kind run|fire, manual, plan JSON,
//	     started_at, deadline, ended_at NULL=open, result, reason,
//	     outcome JSON, apps, restarted, change_orders JSON, generation,
//	     UNIQUE(schedule, scheduled_at))
//	batches(run_id FK CASCADE, app, batch_index, instances JSON,
//	        state submitting|submitted|ended, change_order_id, submitted_at,
//	        result, code, ended_at, generation, PK(run_id, app, batch_index))
//	apps(run_id FK CASCADE, app, result, outcome JSON, ended_at, generation,
//	     PK(run_id, app))
//	schedule_times(schedule PK, last_run, last_success, last_scheduled,
//	               generation)
//
// Times are Unix nanoseconds. schedule_times is kept up to date in the same
// transactions as runs (BeginRun and RecordFire raise last_scheduled, EndRun
// raises last_run and, on success, last_success) and is never pruned, so the
// timestamps alerting reads survive retention. Prune deletes ended runs and
// fires (their batches and apps by cascade); open runs are never pruned.
//
// # Leases and fencing
//
// Every row carries the lease generation of the write that last touched it,
// and every write is conditional on the store's generation being the
// lease's: a holder whose generation was superseded gets ErrFenced and must
// stop acting. SQLite checks the lease row inside each write transaction,
// which holds the database's single write lock from BEGIN IMMEDIATE to
// COMMIT; updates also carry "AND generation <= ?". The generation is
// constant (1) for the embedded file; a PostgreSQL backend will take the
// lease with an expiring row (expires_at, holder) and bump the generation on
// each takeover, checking it in each statement (or SELECT ... FOR SHARE on
// the lease row) so a stale replica cannot write.
package journal
