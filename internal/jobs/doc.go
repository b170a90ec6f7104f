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
package jobs
