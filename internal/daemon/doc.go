// Package daemon runs schedules: it owns the current configuration (swapped
// only after a reload validated), turns robfig/cron ticks into fires, decides
// with internal/firing whether a fire runs or is skipped, starts runs on the
// jobs.Runner, and serves the HTTP surface (/metrics, /healthz, /readyz, the
// schedules and runs API, reload, trigger, cancel).
//
// Lifecycle: New -> Start (config loaded, store and scheduler up: ready) ->
// fires and reloads -> Shutdown (draining: no new run or batch; in-flight
// change orders are watched to their end, bounded) -> stopped.
//
// One goroutine owns reloads: SIGHUP and POST /-/reload both send a request
// to it, so two reloads never interleave.
package daemon
