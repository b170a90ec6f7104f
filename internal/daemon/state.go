package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
)

// DefaultPruneInterval is how often the journal is pruned of runs older than
// state.retention when Options.PruneInterval is zero.
const DefaultPruneInterval = time.Hour

// openStore opens the journal of the state block, at override when it is
// set. Errors start with "state: " and name the file.
func openStore(st config.State, override string) (journal.Store, error) {
	path := st.Path
	if override != "" {
		path = override
	}
	switch st.Driver {
	case "", config.DefaultStateDriver:
	default:
		return nil, fmt.Errorf("state: driver %q is not supported (only %s)", st.Driver, config.DefaultStateDriver)
	}
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return s, nil
}

// closeStore closes the journal if the daemon opened it, once.
func (d *Daemon) closeStore() {
	if !d.ownStore {
		return
	}
	d.closeOnce.Do(func() {
		if err := d.store.Close(); err != nil {
			d.log.Error("closing the journal", "err", err)
		}
	})
}

// Close releases the journal the daemon opened, for a daemon that was built
// but not shut down (Shutdown closes it too). It is safe to call twice.
func (d *Daemon) Close() { d.closeStore() }

// recordFire records a fire that started no run, so history shows it and
// the next start does not decide it again.
func (d *Daemon) recordFire(schedule string, at time.Time, reason string) {
	if err := d.store.RecordFire(context.Background(), schedule, at, jobs.ResultSkipped, reason); err != nil {
		d.log.Error("journal: recording a skipped fire failed", "schedule", schedule, "scheduled_at", at, "reason", reason, "err", err)
	}
}

// execute is one run from its journal row to its outcome: BeginRun first
// (the write-ahead rule: the row exists before any SAE call; a key that has
// a row already starts nothing), then the Runner writing its batches through
// journal.ForRun and its ends through journal.ObserverForRun, then EndRun.
// An interrupted run (ar.open) is resumed under its existing row.
func (d *Daemon) execute(ar *activeRun, sched jobs.Schedule, runner *jobs.Runner) jobs.RunOutcome {
	// Journal writes outlive a cancel: a drained run's end is still recorded.
	ctx := context.Background()
	key := journal.RunKey{Schedule: sched.Name, ScheduledAt: ar.ScheduledAt}
	id := int64(0)
	if ar.open != nil {
		id = ar.open.ID
	} else {
		rec := journal.RunRecord{Started: ar.Started, Manual: ar.Manual}
		if w := sched.Policy.Window; w > 0 {
			rec.Deadline = ar.ScheduledAt.Add(w)
		}
		rid, created, err := d.store.BeginRun(ctx, key, rec)
		switch {
		case err != nil:
			// Without its row a crash could not be resumed: restarting
			// instances unrecorded risks restarting them twice.
			d.log.Error("journal: the run cannot be recorded; not starting it", "run", ar.ID, "err", err)
			now := d.clk.Now()
			out := jobs.RunOutcome{Schedule: sched.Name, ScheduledAt: ar.ScheduledAt, Started: ar.Started, Ended: now,
				Result: jobs.ResultFailed, Reason: jobs.CodeJournal}
			d.metrics.Observe(jobs.Event{Kind: jobs.EventRunEnded, Time: now, Schedule: sched.Name, ScheduledAt: ar.ScheduledAt,
				Result: out.Result, Reason: out.Reason, Run: &out})
			return out
		case !created:
			d.log.Warn("fire skipped: the journal has a run or a decision for it already", "run", ar.ID, "journal_id", rid)
			now := d.clk.Now()
			d.metrics.Skipped(sched.Name, jobs.ReasonOverlap, ar.ScheduledAt)
			return jobs.RunOutcome{Schedule: sched.Name, ScheduledAt: ar.ScheduledAt, Started: now, Ended: now,
				Result: jobs.ResultSkipped, Reason: jobs.ReasonOverlap}
		}
		id = rid
	}
	d.mu.Lock()
	ar.JournalID = id
	d.mu.Unlock()

	r := *runner
	r.Journal = journal.ForRun(d.store, id, d.clk.Now)
	r.Observer = jobs.Observers{runner.Observer, journal.ObserverForRun(d.store, id, func(err error) {
		d.log.Error("journal write failed", "run", ar.ID, "err", err)
	})}
	var out jobs.RunOutcome
	if ar.open != nil {
		out = r.Resume(ar.ctx, sched, ar.ScheduledAt, ar.open.Prior())
	} else {
		out = r.Run(ar.ctx, sched, ar.ScheduledAt)
	}
	if out.Result == jobs.ResultInterrupted && out.Reason == jobs.ReasonCrash {
		// A simulated crash (a Failpoint panicked with jobs.ErrCrash): the
		// journal keeps what a killed process leaves, for the next start.
		return out
	}
	if err := d.store.EndRun(ctx, id, out); err != nil {
		d.log.Error("journal: recording the run's end failed; it will be resumed or closed at the next start", "run", ar.ID, "err", err)
	}
	return out
}

// recover brings the journal's state into the daemon at start, before the
// cron: the alerting timestamps (so a restart neither hides a failure nor
// fakes a success), each schedule's last decided fire, and the runs a
// killed process left open — resumed while their window is open, else
// closed as interrupted. Then every schedule decides the fires it missed
// while the daemon was down: the latest one runs at most once if it is
// within starting_deadline, the others are recorded as missed.
func (d *Daemon) recover() error {
	ctx := context.Background()
	times, err := d.store.LastTimestamps(ctx)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for _, st := range d.states() {
		t, ok := times[st.sched.Name]
		if !ok {
			continue
		}
		d.metrics.RestoreTimestamps(st.sched.Name, t.LastRun, t.LastSuccess, t.LastScheduled)
		if !t.LastScheduled.IsZero() {
			st.mu.Lock()
			st.last = t.LastScheduled
			st.mu.Unlock()
		}
	}

	open, err := d.store.OpenRuns(ctx)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	latest := map[string]int{} // a schedule's latest open run: the only one resumed
	for i, r := range open {
		latest[r.Key.Schedule] = i
	}
	now := d.clk.Now()
	for i := range open {
		r := &open[i]
		d.mu.Lock()
		st, runner := d.scheds[r.Key.Schedule], d.runner
		d.mu.Unlock()
		switch {
		case st == nil:
			d.interrupt(r, jobs.Schedule{Name: r.Key.Schedule}, now, "its schedule is no longer configured")
		case latest[r.Key.Schedule] != i:
			d.interrupt(r, st.sched, now, "a later run of the schedule is open")
		case !now.Before(windowEnd(r, st.sched)):
			d.interrupt(r, st.sched, now, "its window has ended")
		default:
			d.resume(r, st.sched, runner)
		}
	}

	for _, st := range d.states() {
		d.fire(st.sched.Name)
	}
	return nil
}

// windowEnd is when an interrupted run's window ends: the deadline it began
// with, else its instant plus the schedule's window (never without one).
func windowEnd(r *journal.OpenRun, s jobs.Schedule) time.Time {
	if !r.Record.Deadline.IsZero() {
		return r.Record.Deadline
	}
	if s.Policy.Window <= 0 {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return r.Key.ScheduledAt.Add(s.Policy.Window)
}

// resume starts the interrupted run r again under its journal row.
func (d *Daemon) resume(r *journal.OpenRun, sched jobs.Schedule, runner *jobs.Runner) {
	d.mu.Lock()
	ar := d.reserveLocked(sched, r.Key.ScheduledAt, r.Record.Manual)
	ar.open, ar.Resumed, ar.JournalID = r, true, r.ID
	if !r.Record.Started.IsZero() {
		ar.Started = r.Record.Started
	}
	d.mu.Unlock()
	d.log.Warn("resuming an interrupted run", "run", ar.ID, "journal_id", r.ID, "batches", len(r.Batches),
		"unrecorded_submits", len(r.Unresolved()), "in_flight", len(r.InFlight()), "ended_apps", len(r.Apps))
	d.metrics.Scheduled(sched.Name, r.Key.ScheduledAt)
	d.launch(ar, sched, runner)
}

// interrupt closes the interrupted run r as interrupted, without any SAE
// call, and logs what was left.
func (d *Daemon) interrupt(r *journal.OpenRun, sched jobs.Schedule, now time.Time, why string) {
	out := jobs.Interrupted(sched, r.Key.ScheduledAt, r.Prior(), now)
	id := runID(r.Key.Schedule, r.Key.ScheduledAt)
	if r.Record.Manual {
		id += ".manual"
	}
	if err := d.store.EndRun(context.Background(), r.ID, out); err != nil {
		d.log.Error("journal: closing an interrupted run failed", "run", id, "err", err)
		return
	}
	d.log.Warn("interrupted run closed: "+why, "run", id, "journal_id", r.ID, "result", out.Result)
	for _, a := range out.Apps {
		if a.Result != jobs.ResultInterrupted {
			continue
		}
		d.log.Warn("left by the interrupted run", "run", id, "app", a.App.ID, "restarted", len(a.Restarted),
			"not_restarted", strings.Join(a.NotRestarted, ","), "change_orders", strings.Join(a.ChangeOrders, ","), "message", a.Message)
	}
	d.metrics.Observe(jobs.Event{Kind: jobs.EventRunEnded, Time: now, Schedule: out.Schedule, ScheduledAt: out.ScheduledAt,
		Result: out.Result, Reason: out.Reason, Run: &out})
	d.mu.Lock()
	d.remember(&activeRun{ID: id, Schedule: out.Schedule, ScheduledAt: out.ScheduledAt, Started: out.Started,
		Manual: r.Record.Manual, JournalID: r.ID, Outcome: &out, done: closedChan()})
	d.mu.Unlock()
	if d.opts.Out != nil {
		d.opts.Out(out)
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// startPruning prunes the journal now and every PruneInterval until the
// daemon shuts down.
func (d *Daemon) startPruning() {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		for {
			_, _ = d.prune(d.runCtx)
			if err := d.clk.Sleep(d.runCtx, d.opts.PruneInterval); err != nil {
				return
			}
		}
	}()
}

// prune deletes the runs and fires that ended more than state.retention
// ago (open runs and the alerting timestamps are kept) and returns how many.
func (d *Daemon) prune(ctx context.Context) (int, error) {
	d.mu.Lock()
	retention := d.cfg.State.Retention
	d.mu.Unlock()
	if retention <= 0 {
		return 0, nil
	}
	n, err := d.store.Prune(ctx, d.clk.Now().Add(-retention))
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Error("journal: pruning failed", "err", err)
	case n > 0:
		d.log.Info("journal pruned", "runs", n, "retention", retention)
	}
	return n, err
}

// History returns the journal's recent runs and recorded fires, newest
// first (GET /api/v1/runs). A store error is returned as it is.
func (d *Daemon) History(ctx context.Context, schedule string, n int) ([]journal.RunSummary, error) {
	runs, err := d.store.Runs(ctx, journal.RunFilter{Schedule: schedule, Limit: n})
	if err != nil {
		return nil, err
	}
	if runs == nil {
		runs = []journal.RunSummary{}
	}
	return runs, nil
}
