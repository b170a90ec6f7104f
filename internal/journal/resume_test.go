package journal_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

func TestOpenRunPrior(t *testing.T) {
	at := time.Date(2024, 3, 10, 7, 0, 0, 0, time.UTC)
	plan := []jobs.AppPlan{{App: jobs.App{ID: "app-1"}, Instances: []string{"i-1", "i-2", "i-3"}}}
	ended := []jobs.AppOutcome{{App: jobs.App{ID: "app-0"}, Result: jobs.ResultSuccess}}
	r := journal.OpenRun{
		ID:     7,
		Key:    journal.RunKey{Schedule: "nightly", ScheduledAt: at},
		Record: journal.RunRecord{Plan: plan, Started: at.Add(time.Second)},
		Batches: []journal.Batch{
			{App: "app-1", Index: 1, Instances: []string{"i-1"}, State: journal.BatchEnded, ChangeOrderID: "co-1",
				Submitted: at.Add(2 * time.Second), Result: jobs.ResultSuccess, Ended: at.Add(time.Minute)},
			{App: "app-1", Index: 2, Instances: []string{"i-2"}, State: journal.BatchSubmitted, ChangeOrderID: "co-2", Submitted: at.Add(2 * time.Minute)},
			{App: "app-1", Index: 3, Instances: []string{"i-3"}, State: journal.BatchSubmitting, Submitted: at.Add(3 * time.Minute)},
		},
		Apps: ended,
	}
	want := jobs.Prior{
		Started: at.Add(time.Second),
		Plans:   plan,
		Ended:   ended,
		Batches: []jobs.PriorBatch{
			{AppID: "app-1", Index: 1, Instances: []string{"i-1"}, Submitted: at.Add(2 * time.Second), ChangeOrderID: "co-1",
				Ended: true, Result: jobs.ResultSuccess, EndedAt: at.Add(time.Minute)},
			{AppID: "app-1", Index: 2, Instances: []string{"i-2"}, Submitted: at.Add(2 * time.Minute), ChangeOrderID: "co-2"},
			{AppID: "app-1", Index: 3, Instances: []string{"i-3"}, Submitted: at.Add(3 * time.Minute)},
		},
	}
	if got := r.Prior(); !reflect.DeepEqual(got, want) {
		t.Errorf("Prior() = %+v, want %+v", got, want)
	}
}

// endRecorder records the ends ObserverForRun writes and answers err.
type endRecorder struct {
	journal.Store
	calls []string
	err   error
}

func (r *endRecorder) EndBatch(_ context.Context, runID int64, app string, index int, result jobs.Result, code string, ended time.Time) error {
	r.calls = append(r.calls, "batch "+app+" "+string(result)+" "+code+" "+ended.Format(time.RFC3339))
	return r.err
}

func (r *endRecorder) EndApp(_ context.Context, runID int64, out jobs.AppOutcome) error {
	r.calls = append(r.calls, "app "+out.App.ID+" "+string(out.Result))
	return r.err
}

func TestObserverForRun(t *testing.T) {
	at := time.Date(2024, 3, 10, 7, 0, 5, 0, time.UTC)
	app := jobs.App{ID: "app-1"}
	tests := []struct {
		name      string
		event     jobs.Event
		storeErr  error
		wantCalls []string
		wantErr   bool
	}{
		{name: "a batch end is EndBatch with its code", event: jobs.Event{Kind: jobs.EventBatchEnded, Time: at, App: app, Batch: 2, Result: jobs.ResultFailed, Reason: "change_order_failed"},
			wantCalls: []string{"batch app-1 failed change_order_failed 2024-03-10T07:00:05Z"}},
		{name: "an app end is EndApp", event: jobs.Event{Kind: jobs.EventAppEnded, App: app, AppOutcome: &jobs.AppOutcome{App: app, Result: jobs.ResultSuccess}},
			wantCalls: []string{"app app-1 success"}},
		{name: "a selector that matched nothing has no app ID: not written", event: jobs.Event{Kind: jobs.EventAppEnded, AppOutcome: &jobs.AppOutcome{Result: jobs.ResultFailed}}},
		{name: "other events are not written", event: jobs.Event{Kind: jobs.EventBatchSubmitted, App: app, Batch: 1}},
		{name: "a batch never planned is not an error", event: jobs.Event{Kind: jobs.EventBatchEnded, Time: at, App: app, Batch: 1, Result: jobs.ResultFailed},
			storeErr: journal.ErrNotFound, wantCalls: []string{"batch app-1 failed  2024-03-10T07:00:05Z"}},
		{name: "an app ended before the crash is not an error", event: jobs.Event{Kind: jobs.EventAppEnded, App: app, AppOutcome: &jobs.AppOutcome{App: app, Result: jobs.ResultSuccess}},
			storeErr: journal.ErrConflict, wantCalls: []string{"app app-1 success"}},
		{name: "a failed write is reported", event: jobs.Event{Kind: jobs.EventAppEnded, App: app, AppOutcome: &jobs.AppOutcome{App: app, Result: jobs.ResultSuccess}},
			storeErr: journal.ErrFenced, wantCalls: []string{"app app-1 success"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &endRecorder{err: tt.storeErr}
			var got error
			journal.ObserverForRun(rec, 3, func(err error) { got = err }).Observe(tt.event)
			if !reflect.DeepEqual(rec.calls, tt.wantCalls) {
				t.Errorf("store calls = %q, want %q", rec.calls, tt.wantCalls)
			}
			if (got != nil) != tt.wantErr || (got != nil && !errors.Is(got, tt.storeErr)) {
				t.Errorf("reported error = %v, want error: %v", got, tt.wantErr)
			}
		})
	}
}
