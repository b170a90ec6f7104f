// Package daemon runs schedules: it owns the current configuration (swapped
// only after a reload validated), turns robfig/cron ticks into fires, decides
// with internal/firing whether a fire runs or is skipped, starts runs on the
// jobs.Runner, and serves the HTTP surface (/metrics, /healthz, /readyz, the
// schedules and runs API, reload, trigger, cancel).
//
// Lifecycle: New (configuration loaded and validated, metrics registered)
// -> Start (listening, firing, preflight in the background: ready) -> fires
// and reloads -> Shutdown (draining: /readyz 503, no new run or batch;
// in-flight change orders are watched to their end, bounded by
// ShutdownTimeout) -> stopped.
//
// # A fire
//
// robfig only triggers: each schedule's cron.Schedule hands out the
// (jittered) instant of its next fire. When it goes off, firing.Decide,
// given the schedule's last decided fire, whether a run is in progress and
// now, says what the fires that came due since become: the latest one runs
// unless the schedule is suspended (suspended), it is a DST-gap fire of a
// dst: skip schedule (dst_gap), it is later than its starting deadline or
// past its window (missed_deadline), or the previous run is still going
// (overlap); older due fires (the host slept, a reload) are recorded as
// missed. "@every" schedules ignore the zone (see internal/firing). A run is
// keyed by (schedule, scheduled instant): its ID is NAME.YYYYMMDDTHHMMSSZ.
//
// Two schedules that target one app share the daemon's jobs.AppLocks: the
// second run waits for the first before it touches the app.
//
// # Metrics call contract
//
// SetSchedules before the cron can fire (New, every reload); at each due
// fire Scheduled (when it runs) or Skipped (when it starts no run: overlap,
// suspended, dst_gap, missed_deadline), then SetNextRun; SetRunDeadline when
// a run starts; the run's own events reach the metrics as a jobs.Observer.
//
// # The journal
//
// New opens the run journal (state.path, or Options.StatePath; a file that
// is not a database is an error "state: ...", exit 2 in `scheduler run`).
// Start, before the cron, recovers: the alerting timestamps and each
// schedule's last decided fire come back from it (LastTimestamps); each run
// a killed process left open (OpenRuns) is resumed with jobs.Runner.Resume
// while its window is open, else closed with jobs.Interrupted; then every
// schedule decides the fires it missed while the daemon was down (at most
// one catch-up run, the rest recorded missed). A run is BeginRun (before
// any SAE call; a key that has a row starts nothing) -> the Runner, writing
// batch rows and change orders through journal.ForRun and batch and app
// ends through journal.ObserverForRun -> EndRun. A fire that starts no run
// is RecordFire. The journal is pruned of runs older than state.retention at
// start and every PruneInterval.
//
// # Reloads
//
// SIGHUP and POST /-/reload both call Reload, serialised: load and validate
// the file, then swap. A bad file keeps the running schedules and returns
// (and logs) its FILE:LINE errors. Runs in progress finish under the Runner,
// and so the configuration, they started with; a schedule whose cron, zone
// and DST policy did not change keeps its decision state, so no fire is
// decided twice.
package daemon
