package journal

import (
	"context"
	"errors"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// Prior returns what the journal knew of the interrupted run r, as
// jobs.Runner.Resume and jobs.Interrupted take it: its start, its plan, the
// apps that ended and every recorded batch (a batch is ended when its row
// is in state ended).
func (r OpenRun) Prior() jobs.Prior {
	p := jobs.Prior{
		Started: r.Record.Started,
		Plans:   r.Record.Plan,
		Ended:   r.Apps,
	}
	for _, b := range r.Batches {
		p.Batches = append(p.Batches, jobs.PriorBatch{
			AppID:         b.App,
			Index:         b.Index,
			Instances:     b.Instances,
			Submitted:     b.Submitted,
			ChangeOrderID: b.ChangeOrderID,
			Ended:         b.State == BatchEnded,
			Result:        b.Result,
			Code:          b.Code,
			EndedAt:       b.Ended,
		})
	}
	return p
}

// ObserverForRun returns the jobs.Observer that mirrors run runID's ends
// into s: EventBatchEnded is EndBatch (its Reason is the batch's code),
// EventAppEnded is EndApp (apps without an ID, selectors that matched
// nothing, are in the run's outcome only). A batch that was never planned
// (the journal refused it) and an app already ended (a resumed run's) are
// not errors; any other failed write goes to onErr, which may be nil.
//
// Together with ForRun (the write-ahead rows) and the caller's EndRun it
// makes the journal's record of a run; its writes are synchronous, so a batch
// that ended is recorded before the next one is planned.
func ObserverForRun(s Store, runID int64, onErr func(error)) jobs.Observer {
	return runObserver{s: s, id: runID, onErr: onErr}
}

type runObserver struct {
	s     Store
	id    int64
	onErr func(error)
}

// Observe implements jobs.Observer.
func (o runObserver) Observe(e jobs.Event) {
	// The run's own context may be cancelled (a drain): its ends are still
	// recorded, bounded by the store's busy timeout.
	ctx := context.Background()
	var err error
	switch e.Kind {
	case jobs.EventBatchEnded:
		if e.App.ID == "" || e.Batch < 1 {
			return
		}
		err = o.s.EndBatch(ctx, o.id, e.App.ID, e.Batch, e.Result, e.Reason, stamp(e.Time))
		if errors.Is(err, ErrNotFound) {
			err = nil // never planned: the journal refused the batch, nothing was submitted
		}
	case jobs.EventAppEnded:
		if e.AppOutcome == nil || e.AppOutcome.App.ID == "" || e.AppOutcome.Result == "" {
			return
		}
		err = o.s.EndApp(ctx, o.id, *e.AppOutcome)
		if errors.Is(err, ErrConflict) {
			err = nil // ended before a crash; the resumed run keeps that outcome
		}
	default:
		return
	}
	if err != nil && o.onErr != nil {
		o.onErr(err)
	}
}

func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
