// Package firing decides when schedules fire: parsing cron expressions, the
// next fire times in a schedule's zone with its DST policy, jitter, and which
// fires are due, missed or skipped. robfig/cron only parses (and may trigger);
// every decision is a plain function of (schedule, last state, now) here, and
// Spec.Next is the one function that gives next fire times to the scheduler,
// `scheduler next`, the HTTP API and the metrics alike.
//
// # Fire times and daylight saving time
//
// A cron expression names wall-clock times in the schedule's zone (UTC when
// none is given — never the host's zone). Spec evaluates the expression on a
// zone-free wall clock and maps each named wall time to an instant itself,
// instead of trusting robfig's Next across transitions (robfig skips fires in a
// spring-forward gap and may fire a repeated wall time twice):
//
//   - A wall time that exists once fires at that instant.
//   - Fall back (a wall time that occurs twice): it fires once, at its first
//     occurrence (01:30 EDT, never again at 01:30 EST). A sub-hourly cron
//     therefore pauses during the repeated hour: "*/15 * * * *" in
//     America/New_York on 2026-11-01 fires 01:00, 01:15, 01:30, 01:45 EDT, then
//     02:00 EST, 75 minutes later.
//   - Spring forward (wall times that do not exist): every named wall time in
//     the gap collapses onto one fire at the transition instant (02:30 in
//     America/New_York on 2026-03-08 becomes 03:00 EDT = 07:00 UTC), marked
//     DSTGap. With dst: run_at_transition (the default) it runs; with dst: skip
//     it is returned with Skip set, still a due fire, and is recorded as
//     skipped with reason dst_gap. If the schedule also names the transition's
//     own wall time (03:00 for "0 * * * *"), that regular fire absorbs the gap:
//     one fire at that instant, not marked DSTGap, run under either policy —
//     there is never more than one fire per instant.
//
// A fire is keyed by its instant (Fire.At): the journal's idempotency key is
// (schedule, At). Fire.Nominal keeps the wall time the cron named, for display.
//
// "@every D" ignores the zone and DST: it fires at every multiple of D counted
// from the zero time (year 1, UTC), so "@every 10m" fires at :00, :10, :20 …
// whatever the zone, and the fire times do not depend on when the daemon
// started.
//
// # Due, missed and skipped
//
// The daemon sleeps (on its clock) until the next fire plus its Jitter, then
// calls Decide with the schedule's State and now. Decide runs at most one fire —
// the most recent one due, if it is within the starting deadline — and lists
// every older fire for the journal with its reason (missed_deadline, dst_gap or
// suspended), capped like the Kubernetes CronJob controller: more than MaxMissed
// missed fires set TooMany and only the latest MaxMissed are listed.
package firing
