package journal_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

func TestRunKeyString(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  journal.RunKey
		want string
	}{
		{name: "UTC instant", key: journal.RunKey{Schedule: "nightly", ScheduledAt: time.Date(2024, 3, 10, 7, 0, 0, 0, time.UTC)}, want: "nightly.20240310T070000Z"},
		{name: "a New York fire is named in UTC", key: journal.RunKey{Schedule: "nightly", ScheduledAt: time.Date(2024, 3, 10, 3, 0, 0, 0, ny)}, want: "nightly.20240310T070000Z"},
		{name: "a Shanghai fire is named in UTC", key: journal.RunKey{Schedule: "daily", ScheduledAt: time.Date(2024, 3, 10, 2, 0, 0, 0, sh)}, want: "daily.20240309T180000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.String(); got != tt.want {
				t.Errorf("RunKey.String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// recorder is a journal.Store that records the adapter's calls; the other
// methods are not used by ForRun.
type recorder struct {
	journal.Store
	calls []string
}

func (r *recorder) PlanBatch(_ context.Context, runID int64, app string, index int, ids []string, at time.Time) error {
	r.calls = append(r.calls, fmt.Sprintf("plan run %d app %s batch %d %v at %s", runID, app, index, ids, at.Format(time.RFC3339)))
	return nil
}

func (r *recorder) RecordChangeOrder(_ context.Context, runID int64, app string, index int, co string) error {
	r.calls = append(r.calls, fmt.Sprintf("record run %d app %s batch %d %s", runID, app, index, co))
	return nil
}

func TestForRun(t *testing.T) {
	rec := &recorder{}
	now := time.Date(2024, 3, 10, 7, 0, 5, 0, time.UTC)
	j := journal.ForRun(rec, 42, func() time.Time { return now })
	b := jobs.BatchRecord{Schedule: "nightly", App: jobs.App{ID: "app-1", Name: "web"}, Batch: 2, Instances: []string{"i-3"}}
	if err := j.BatchPlanned(context.Background(), b); err != nil {
		t.Fatalf("BatchPlanned() = %v", err)
	}
	if err := j.ChangeOrderRecorded(context.Background(), b, "co-9"); err != nil {
		t.Fatalf("ChangeOrderRecorded() = %v", err)
	}
	want := []string{
		"plan run 42 app app-1 batch 2 [i-3] at 2024-03-10T07:00:05Z",
		"record run 42 app app-1 batch 2 co-9",
	}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("calls = %v, want %v", rec.calls, want)
	}
}
