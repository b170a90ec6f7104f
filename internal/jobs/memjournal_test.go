package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemJournal is the journal of the crash tests (unit and end-to-end): a
// Journal for the write-ahead rows and an Observer for the batches' and
// apps' ends, with the SQLite store's semantics (a batch is planned once,
// one change order per batch, ended batches keep their result). Prior
// returns what a restarted daemon reads from the store. Safe for
// concurrent use.
type MemJournal struct {
	mu      sync.Mutex
	started time.Time
	plans   []AppPlan
	rows    map[memKey]*PriorBatch
	order   []memKey
	ended   []AppOutcome
	runEnds int

	Planned  int // BatchPlanned calls that made a row
	Recorded int // ChangeOrderRecorded calls that recorded an ID
}

type memKey struct {
	app   string
	index int
}

var (
	errMemConflict = errors.New("mem journal: conflicts with the record")
	errMemNotFound = errors.New("mem journal: not found")
)

// NewMemJournal returns a journal holding p (empty for a new run): its
// rows, ended apps, plan and start.
func NewMemJournal(p Prior) *MemJournal {
	j := &MemJournal{started: p.Started, plans: p.Plans, rows: map[memKey]*PriorBatch{}}
	for _, b := range p.Batches {
		b := b
		k := memKey{b.AppID, b.Index}
		j.rows[k] = &b
		j.order = append(j.order, k)
	}
	j.ended = slices.Clone(p.Ended)
	return j
}

// SetPlan records the run's plan and start, as the daemon's BeginRun does.
func (j *MemJournal) SetPlan(started time.Time, plans []AppPlan) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.started, j.plans = started, plans
}

// BatchPlanned implements Journal.
func (j *MemJournal) BatchPlanned(_ context.Context, b BatchRecord) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	k := memKey{b.App.ID, b.Batch}
	if _, ok := j.rows[k]; ok {
		return fmt.Errorf("plan batch %d of %s: planned already: %w", b.Batch, b.App.ID, errMemConflict)
	}
	j.rows[k] = &PriorBatch{AppID: b.App.ID, Index: b.Batch, Instances: slices.Clone(b.Instances), Submitted: b.Planned}
	j.order = append(j.order, k)
	j.Planned++
	return nil
}

// ChangeOrderRecorded implements Journal.
func (j *MemJournal) ChangeOrderRecorded(_ context.Context, b BatchRecord, id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	row, ok := j.rows[memKey{b.App.ID, b.Batch}]
	switch {
	case !ok:
		return fmt.Errorf("record change order of batch %d of %s: %w", b.Batch, b.App.ID, errMemNotFound)
	case row.ChangeOrderID == id:
		return nil
	case row.ChangeOrderID != "":
		return fmt.Errorf("record change order %s: %s recorded already: %w", id, row.ChangeOrderID, errMemConflict)
	}
	row.ChangeOrderID = id
	j.Recorded++
	return nil
}

// Observe records batch and app ends, as the daemon's journal mirror does.
func (j *MemJournal) Observe(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch e.Kind {
	case EventRunStarted:
		if j.started.IsZero() {
			j.started = e.Time
		}
	case EventBatchEnded:
		if row, ok := j.rows[memKey{e.App.ID, e.Batch}]; ok {
			row.Ended, row.Result, row.Code, row.EndedAt = true, e.Result, e.Reason, e.Time
		}
	case EventAppEnded:
		if e.AppOutcome == nil {
			return
		}
		for _, o := range j.ended {
			if appKey(o.App) == appKey(e.AppOutcome.App) {
				return // the store refuses a second end
			}
		}
		j.ended = append(j.ended, *e.AppOutcome)
	case EventRunEnded:
		j.runEnds++
	}
}

// Prior is what a restarted daemon reads of the run.
func (j *MemJournal) Prior() Prior {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := Prior{Started: j.started, Plans: j.plans, Ended: slices.Clone(j.ended)}
	for _, k := range j.order {
		b := *j.rows[k]
		b.Instances = slices.Clone(b.Instances)
		p.Batches = append(p.Batches, b)
	}
	return p
}

// Row returns the app's batch row of index, if any.
func (j *MemJournal) Row(app string, index int) (PriorBatch, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	row, ok := j.rows[memKey{app, index}]
	if !ok {
		return PriorBatch{}, false
	}
	return *row, true
}

// RunEnds counts the EventRunEnded events seen.
func (j *MemJournal) RunEnds() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runEnds
}
