package journal

import (
	"context"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// ForRun returns the jobs.Journal the rollout loop of run runID writes
// through: BatchPlanned is PlanBatch (submitted at now()), ChangeOrderRecorded
// is RecordChangeOrder. Apps are keyed by their ID. now defaults to time.Now.
func ForRun(s Store, runID int64, now func() time.Time) jobs.Journal {
	if now == nil {
		now = time.Now
	}
	return runJournal{s: s, id: runID, now: now}
}

type runJournal struct {
	s   Store
	id  int64
	now func() time.Time
}

var _ jobs.Journal = runJournal{}

// BatchPlanned implements jobs.Journal.
func (j runJournal) BatchPlanned(ctx context.Context, b jobs.BatchRecord) error {
	return j.s.PlanBatch(ctx, j.id, b.App.ID, b.Batch, b.Instances, j.now())
}

// ChangeOrderRecorded implements jobs.Journal.
func (j runJournal) ChangeOrderRecorded(ctx context.Context, b jobs.BatchRecord, changeOrderID string) error {
	return j.s.RecordChangeOrder(ctx, j.id, b.App.ID, b.Batch, changeOrderID)
}
