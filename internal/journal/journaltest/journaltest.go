// Package journaltest is the conformance suite every journal.Store backend
// runs: the SQLite backend today, PostgreSQL later, against the same
// contract.
//
//	func TestConformance(t *testing.T) {
//		journaltest.Run(t, func(t *testing.T) journal.Store { ... fresh, empty store ... })
//		journaltest.RunFencing(t, func(t *testing.T) journaltest.Opener { ... })
//	}
package journaltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

// T0 is the suite's time anchor: a 02:00 fire on the day New York springs forward.
var T0 = time.Date(2024, 3, 10, 7, 0, 0, 0, time.UTC)

// Opener opens a handle on one shared storage under a lease generation.
type Opener func(generation int64) (journal.Store, error)

// Run runs the contract subtests. open must return a fresh, empty store for
// each call and close it when t ends. Backends must also pass RunFencing.
func Run(t *testing.T, open func(t *testing.T) journal.Store) {
	t.Run("BeginRun", func(t *testing.T) { testBeginRun(t, open) })
	t.Run("WriteAhead", func(t *testing.T) { testWriteAhead(t, open) })
	t.Run("OpenRuns", func(t *testing.T) { testOpenRuns(t, open) })
	t.Run("EndAppEndRun", func(t *testing.T) { testEnd(t, open) })
	t.Run("History", func(t *testing.T) { testHistory(t, open) })
	t.Run("LastTimestamps", func(t *testing.T) { testLastTimestamps(t, open) })
	t.Run("RecordFire", func(t *testing.T) { testRecordFire(t, open) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open) })
}

func key(schedule string, at time.Time) journal.RunKey {
	return journal.RunKey{Schedule: schedule, ScheduledAt: at}
}

func rec(at time.Time) journal.RunRecord {
	return journal.RunRecord{
		Plan: []jobs.AppPlan{{
			App:       jobs.App{ID: "app-1", Name: "web"},
			Total:     3,
			BatchSize: 2,
			Instances: []string{"i-1", "i-2", "i-3"},
			Batches:   [][]string{{"i-1", "i-2"}, {"i-3"}},
		}},
		Started:  at.Add(time.Second),
		Deadline: at.Add(2 * time.Hour),
	}
}

// begin starts a run that must be new.
func begin(t *testing.T, s journal.Store, k journal.RunKey) int64 {
	t.Helper()
	id, created, err := s.BeginRun(context.Background(), k, rec(k.ScheduledAt))
	if err != nil || !created {
		t.Fatalf("BeginRun(%s) = %d, %v, %v, want created", k, id, created, err)
	}
	return id
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// endRun ends a run with result at ended, restarting restarted instances of app-1.
func endRun(t *testing.T, s journal.Store, id int64, k journal.RunKey, result jobs.Result, ended time.Time, restarted ...string) {
	t.Helper()
	out := jobs.RunOutcome{Schedule: k.Schedule, ScheduledAt: k.ScheduledAt, Started: k.ScheduledAt, Ended: ended, Result: result,
		Apps: []jobs.AppOutcome{{App: jobs.App{ID: "app-1"}, Result: result, Restarted: restarted}}}
	must(t, fmt.Sprintf("EndRun(%d)", id), s.EndRun(context.Background(), id, out))
}

func openRun(t *testing.T, s journal.Store, id int64) (journal.OpenRun, bool) {
	t.Helper()
	runs, err := s.OpenRuns(context.Background())
	must(t, "OpenRuns()", err)
	for _, r := range runs {
		if r.ID == id {
			return r, true
		}
	}
	return journal.OpenRun{}, false
}

func testBeginRun(t *testing.T, open func(t *testing.T) journal.Store) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatalf("LoadLocation: %v", err)
	}
	tests := []struct {
		name        string
		first       journal.RunKey
		prepare     func(t *testing.T, s journal.Store, firstID int64)
		second      journal.RunKey
		wantSame    bool
		wantCreated bool
	}{
		{name: "the same key twice is one run", first: key("nightly", T0), second: key("nightly", T0), wantSame: true},
		{name: "the same instant in another zone is the same key", first: key("nightly", T0), second: key("nightly", T0.In(ny)), wantSame: true},
		{name: "the same schedule at another instant is another run", first: key("nightly", T0), second: key("nightly", T0.Add(24*time.Hour)), wantCreated: true},
		{name: "another schedule at the same instant is another run", first: key("nightly", T0), second: key("weekly", T0), wantCreated: true},
		{name: "one nanosecond later is another run", first: key("nightly", T0), second: key("nightly", T0.Add(time.Nanosecond)), wantCreated: true},
		{
			name: "an ended run's key stays taken", first: key("nightly", T0), second: key("nightly", T0), wantSame: true,
			prepare: func(t *testing.T, s journal.Store, id int64) {
				endRun(t, s, id, key("nightly", T0), jobs.ResultSuccess, T0.Add(time.Hour))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			id1 := begin(t, s, tt.first)
			if tt.prepare != nil {
				tt.prepare(t, s, id1)
			}
			other := rec(tt.second.ScheduledAt)
			other.Plan, other.Manual = nil, true
			id2, created, err := s.BeginRun(ctx, tt.second, other)
			if err != nil {
				t.Fatalf("BeginRun(%s) again: %v", tt.second, err)
			}
			if created != tt.wantCreated || (id2 == id1) != tt.wantSame {
				t.Errorf("BeginRun(%s) = %d, created %v; want created %v, same as %d %v", tt.second, id2, created, tt.wantCreated, id1, tt.wantSame)
			}
			if r, ok := openRun(t, s, id1); ok && (len(r.Record.Plan) != 1 || r.Record.Manual) {
				t.Errorf("run %d after a second BeginRun = %+v, want the first record kept", id1, r.Record)
			}
		})
	}

	t.Run("a key recorded as a skipped fire is taken", func(t *testing.T) {
		s := open(t)
		must(t, "RecordFire", s.RecordFire(context.Background(), "nightly", T0, jobs.ResultSkipped, jobs.ReasonOverlap))
		_, created, err := s.BeginRun(context.Background(), key("nightly", T0), rec(T0))
		if err != nil || created {
			t.Errorf("BeginRun() after RecordFire = created %v, %v; want not created, nil", created, err)
		}
	})
	t.Run("an invalid key is an error", func(t *testing.T) {
		s := open(t)
		for _, k := range []journal.RunKey{key("", T0), key("nightly", time.Time{})} {
			if _, _, err := s.BeginRun(context.Background(), k, rec(T0)); err == nil {
				t.Errorf("BeginRun(%+v) = nil error, want an error", k)
			}
		}
	})
}

// op is one write of a test sequence and the error it must return.
type op struct {
	do      func(ctx context.Context, s journal.Store, id int64) error
	wantErr error
}

func plan(app string, index int, inst ...string) func(context.Context, journal.Store, int64) error {
	return func(ctx context.Context, s journal.Store, id int64) error {
		return s.PlanBatch(ctx, id, app, index, inst, T0.Add(time.Duration(index)*time.Minute))
	}
}

func record(app string, index int, co string) func(context.Context, journal.Store, int64) error {
	return func(ctx context.Context, s journal.Store, id int64) error {
		return s.RecordChangeOrder(ctx, id, app, index, co)
	}
}

func endBatch(app string, index int, r jobs.Result, code string) func(context.Context, journal.Store, int64) error {
	return func(ctx context.Context, s journal.Store, id int64) error {
		return s.EndBatch(ctx, id, app, index, r, code, T0.Add(time.Hour))
	}
}

func testWriteAhead(t *testing.T, open func(t *testing.T) journal.Store) {
	tests := []struct {
		name string
		ops  []op
		want []journal.Batch // app-1's batches in OpenRuns (Submitted, Ended, Generation not compared)
	}{
		{
			name: "a planned batch is submitting with no change order",
			ops:  []op{{do: plan("app-1", 1, "i-1", "i-2")}},
			want: []journal.Batch{{App: "app-1", Index: 1, Instances: []string{"i-1", "i-2"}, State: journal.BatchSubmitting}},
		},
		{
			name: "the change order recorded after the submit makes it submitted",
			ops:  []op{{do: plan("app-1", 1, "i-1")}, {do: record("app-1", 1, "co-1")}},
			want: []journal.Batch{{App: "app-1", Index: 1, Instances: []string{"i-1"}, State: journal.BatchSubmitted, ChangeOrderID: "co-1"}},
		},
		{
			name: "recording the same change order twice is a no-op",
			ops:  []op{{do: plan("app-1", 1, "i-1")}, {do: record("app-1", 1, "co-1")}, {do: record("app-1", 1, "co-1")}},
			want: []journal.Batch{{App: "app-1", Index: 1, Instances: []string{"i-1"}, State: journal.BatchSubmitted, ChangeOrderID: "co-1"}},
		},
		{
			name: "a second change order for a batch conflicts",
			ops:  []op{{do: plan("app-1", 1, "i-1")}, {do: record("app-1", 1, "co-1")}, {do: record("app-1", 1, "co-2"), wantErr: journal.ErrConflict}},
			want: []journal.Batch{{App: "app-1", Index: 1, Instances: []string{"i-1"}, State: journal.BatchSubmitted, ChangeOrderID: "co-1"}},
		},
		{
			name: "planning a batch twice conflicts, so it is submitted at most once",
			ops:  []op{{do: plan("app-1", 1, "i-1")}, {do: plan("app-1", 1, "i-1"), wantErr: journal.ErrConflict}},
			want: []journal.Batch{{App: "app-1", Index: 1, Instances: []string{"i-1"}, State: journal.BatchSubmitting}},
		},
		{
			name: "a change order for an unplanned batch is not found",
			ops:  []op{{do: record("app-1", 1, "co-1"), wantErr: journal.ErrNotFound}},
		},
		{
			name: "ending an unplanned batch is not found",
			ops:  []op{{do: endBatch("app-1", 2, jobs.ResultSuccess, ""), wantErr: journal.ErrNotFound}},
		},
		{
			name: "a refused submit ends the batch without a change order",
			ops:  []op{{do: plan("app-1", 1, "i-1")}, {do: endBatch("app-1", 1, jobs.ResultFailed, "Application.ChangerOrderRunning")}},
			want: []journal.Batch{{App: "app-1", Index: 1, Instances: []string{"i-1"}, State: journal.BatchEnded, Result: jobs.ResultFailed, Code: "Application.ChangerOrderRunning"}},
		},
		{
			name: "an ended batch keeps its change order",
			ops:  []op{{do: plan("app-1", 1, "i-1")}, {do: record("app-1", 1, "co-1")}, {do: endBatch("app-1", 1, jobs.ResultSuccess, "")}},
			want: []journal.Batch{{App: "app-1", Index: 1, Instances: []string{"i-1"}, State: journal.BatchEnded, ChangeOrderID: "co-1", Result: jobs.ResultSuccess}},
		},
		{
			name: "batches are listed by index whatever the write order",
			ops:  []op{{do: plan("app-1", 2, "i-3")}, {do: plan("app-1", 1, "i-1", "i-2")}, {do: record("app-1", 2, "co-2")}},
			want: []journal.Batch{
				{App: "app-1", Index: 1, Instances: []string{"i-1", "i-2"}, State: journal.BatchSubmitting},
				{App: "app-1", Index: 2, Instances: []string{"i-3"}, State: journal.BatchSubmitted, ChangeOrderID: "co-2"},
			},
		},
		{
			name: "an index below 1 is an error",
			ops:  []op{{do: plan("app-1", 0, "i-1"), wantErr: errAny}},
		},
		{
			name: "a batch without instances is an error",
			ops:  []op{{do: plan("app-1", 1), wantErr: errAny}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			id := begin(t, s, key("nightly", T0))
			for i, o := range tt.ops {
				checkErr(t, fmt.Sprintf("op %d", i+1), o.do(ctx, s, id), o.wantErr)
			}
			r, ok := openRun(t, s, id)
			if !ok {
				t.Fatalf("OpenRuns() has no run %d", id)
			}
			if len(r.Batches) != len(tt.want) {
				t.Fatalf("OpenRuns() batches = %+v, want %+v", r.Batches, tt.want)
			}
			for i, b := range r.Batches {
				w := tt.want[i]
				if b.App != w.App || b.Index != w.Index || !slices.Equal(b.Instances, w.Instances) || b.State != w.State ||
					b.ChangeOrderID != w.ChangeOrderID || b.Result != w.Result || b.Code != w.Code {
					t.Errorf("OpenRuns() batch %d = %+v, want %+v", i, b, w)
				}
				if wantSub := T0.Add(time.Duration(b.Index) * time.Minute); !b.Submitted.Equal(wantSub) {
					t.Errorf("batch %d Submitted = %v, want %v", b.Index, b.Submitted, wantSub)
				}
				if (b.State == journal.BatchEnded) != !b.Ended.IsZero() {
					t.Errorf("batch %d Ended = %v with state %s", b.Index, b.Ended, b.State)
				}
			}
		})
	}

	t.Run("writes to an unknown run are not found", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		checkErr(t, "PlanBatch", s.PlanBatch(ctx, 999, "app-1", 1, []string{"i-1"}, T0), journal.ErrNotFound)
		checkErr(t, "EndApp", s.EndApp(ctx, 999, jobs.AppOutcome{App: jobs.App{ID: "app-1"}, Result: jobs.ResultSuccess}), journal.ErrNotFound)
		checkErr(t, "EndRun", s.EndRun(ctx, 999, jobs.RunOutcome{Result: jobs.ResultSuccess, Ended: T0}), journal.ErrNotFound)
	})
	t.Run("writes to an ended run are refused", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		id := begin(t, s, key("nightly", T0))
		must(t, "PlanBatch", s.PlanBatch(ctx, id, "app-1", 1, []string{"i-1"}, T0))
		endRun(t, s, id, key("nightly", T0), jobs.ResultInterrupted, T0.Add(time.Hour))
		checkErr(t, "PlanBatch", s.PlanBatch(ctx, id, "app-1", 2, []string{"i-2"}, T0), journal.ErrRunEnded)
		checkErr(t, "RecordChangeOrder", s.RecordChangeOrder(ctx, id, "app-1", 1, "co-1"), journal.ErrRunEnded)
		checkErr(t, "EndBatch", s.EndBatch(ctx, id, "app-1", 1, jobs.ResultSuccess, "", T0), journal.ErrRunEnded)
		checkErr(t, "EndApp", s.EndApp(ctx, id, jobs.AppOutcome{App: jobs.App{ID: "app-1"}, Result: jobs.ResultSuccess}), journal.ErrRunEnded)
		checkErr(t, "EndRun", s.EndRun(ctx, id, jobs.RunOutcome{Result: jobs.ResultSuccess, Ended: T0}), journal.ErrRunEnded)
	})
}

// errAny stands for "some error" in a table.
var errAny = errors.New("any error")

func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s = %v, want nil", what, err)
	case want == errAny && err == nil:
		t.Errorf("%s = nil, want an error", what)
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}

func testOpenRuns(t *testing.T, open func(t *testing.T) journal.Store) {
	s := open(t)
	ctx := context.Background()
	// Written out of order: OpenRuns lists by scheduled instant.
	later := begin(t, s, key("nightly", T0.Add(24*time.Hour)))
	crashed := begin(t, s, key("nightly", T0))
	done := begin(t, s, key("weekly", T0))
	must(t, "RecordFire", s.RecordFire(ctx, "hourly", T0, jobs.ResultSkipped, jobs.ReasonMissedDeadline))

	// The crash picture of run "crashed": app-1 batch 1 done, batch 2 submitted
	// and recorded (re-attach), app-2 batch 1 planned but not recorded (the
	// window between the submit and its record), app-3 ended.
	for _, o := range []func(context.Context, journal.Store, int64) error{
		plan("app-1", 1, "i-1", "i-2"), record("app-1", 1, "co-1"), endBatch("app-1", 1, jobs.ResultSuccess, ""),
		plan("app-1", 2, "i-3"), record("app-1", 2, "co-2"),
		plan("app-2", 1, "j-1"),
	} {
		must(t, "write", o(ctx, s, crashed))
	}
	app3 := jobs.AppOutcome{App: jobs.App{ID: "app-3", Name: "api"}, Result: jobs.ResultSkipped, Reason: jobs.ReasonAppStopped, Started: T0, Ended: T0.Add(time.Minute)}
	must(t, "EndApp", s.EndApp(ctx, crashed, app3))
	must(t, "PlanBatch", s.PlanBatch(ctx, done, "app-9", 1, []string{"k-1"}, T0))
	endRun(t, s, done, key("weekly", T0), jobs.ResultSuccess, T0.Add(time.Hour))

	runs, err := s.OpenRuns(ctx)
	must(t, "OpenRuns()", err)
	var ids []int64
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if want := []int64{crashed, later}; !slices.Equal(ids, want) {
		t.Fatalf("OpenRuns() ids = %v, want %v (open runs, oldest scheduled first; no ended run, no fire)", ids, want)
	}
	r := runs[0]
	want := rec(T0)
	if r.Key.Schedule != "nightly" || !r.Key.ScheduledAt.Equal(T0) || !r.Record.Started.Equal(want.Started) ||
		!r.Record.Deadline.Equal(want.Deadline) || r.Record.Manual {
		t.Errorf("OpenRuns()[0] = %+v %+v, want key nightly@%v and record %+v", r.Key, r.Record, T0, want)
	}
	if len(r.Record.Plan) != 1 || r.Record.Plan[0].App.ID != "app-1" || len(r.Record.Plan[0].Batches) != 2 ||
		!slices.Equal(r.Record.Plan[0].Batches[1], []string{"i-3"}) {
		t.Errorf("OpenRuns()[0].Record.Plan = %+v, want the plan given to BeginRun", r.Record.Plan)
	}
	tests := []struct {
		name   string
		got    []journal.Batch
		wantID []string // app/index
	}{
		{name: "unresolved: submitting with no change order", got: r.Unresolved(), wantID: []string{"app-2/1"}},
		{name: "in flight: a recorded change order to re-attach to", got: r.InFlight(), wantID: []string{"app-1/2"}},
		{name: "all batches by app then index", got: r.Batches, wantID: []string{"app-1/1", "app-1/2", "app-2/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, b := range tt.got {
				got = append(got, fmt.Sprintf("%s/%d", b.App, b.Index))
			}
			if !slices.Equal(got, tt.wantID) {
				t.Errorf("batches = %v, want %v", got, tt.wantID)
			}
		})
	}
	if len(r.Apps) != 1 || r.Apps[0].App.ID != "app-3" || r.Apps[0].Reason != jobs.ReasonAppStopped || !r.Apps[0].Ended.Equal(app3.Ended) {
		t.Errorf("OpenRuns()[0].Apps = %+v, want [%+v]", r.Apps, app3)
	}

	t.Run("EndRun takes the run out of OpenRuns", func(t *testing.T) {
		endRun(t, s, crashed, key("nightly", T0), jobs.ResultInterrupted, T0.Add(3*time.Hour))
		if _, ok := openRun(t, s, crashed); ok {
			t.Errorf("OpenRuns() still lists run %d after EndRun", crashed)
		}
		if _, ok := openRun(t, s, later); !ok {
			t.Errorf("OpenRuns() lost run %d", later)
		}
	})
}

func testEnd(t *testing.T, open func(t *testing.T) journal.Store) {
	t.Run("an app ended twice conflicts", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		id := begin(t, s, key("nightly", T0))
		a := jobs.AppOutcome{App: jobs.App{ID: "app-1"}, Result: jobs.ResultSuccess}
		must(t, "EndApp", s.EndApp(ctx, id, a))
		checkErr(t, "EndApp again", s.EndApp(ctx, id, a), journal.ErrConflict)
		checkErr(t, "EndApp without an app ID", s.EndApp(ctx, id, jobs.AppOutcome{Result: jobs.ResultSuccess}), errAny)
	})
	t.Run("apps are listed in the order they ended", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		id := begin(t, s, key("nightly", T0))
		for _, app := range []string{"zz", "aa", "mm"} {
			must(t, "EndApp", s.EndApp(ctx, id, jobs.AppOutcome{App: jobs.App{ID: app}, Result: jobs.ResultSuccess}))
		}
		r, _ := openRun(t, s, id)
		var got []string
		for _, a := range r.Apps {
			got = append(got, a.App.ID)
		}
		if want := []string{"zz", "aa", "mm"}; !slices.Equal(got, want) {
			t.Errorf("OpenRuns() apps = %v, want %v", got, want)
		}
	})
	t.Run("a run ends once", func(t *testing.T) {
		s := open(t)
		id := begin(t, s, key("nightly", T0))
		endRun(t, s, id, key("nightly", T0), jobs.ResultSuccess, T0.Add(time.Hour))
		checkErr(t, "EndRun again", s.EndRun(context.Background(), id, jobs.RunOutcome{Result: jobs.ResultFailed, Ended: T0.Add(2 * time.Hour)}), journal.ErrRunEnded)
		runs, err := s.Runs(context.Background(), journal.RunFilter{})
		must(t, "Runs", err)
		if len(runs) != 1 || runs[0].Result != jobs.ResultSuccess {
			t.Errorf("Runs() = %+v, want the first outcome (success)", runs)
		}
	})
	t.Run("a run without a result is an error", func(t *testing.T) {
		s := open(t)
		id := begin(t, s, key("nightly", T0))
		checkErr(t, "EndRun", s.EndRun(context.Background(), id, jobs.RunOutcome{Ended: T0}), errAny)
		if _, ok := openRun(t, s, id); !ok {
			t.Errorf("OpenRuns() lost run %d after a refused EndRun", id)
		}
	})
}

func testHistory(t *testing.T, open func(t *testing.T) journal.Store) {
	s := open(t)
	ctx := context.Background()
	day := 24 * time.Hour
	// nightly day 0: success with two change orders, one only in the outcome.
	n0 := begin(t, s, key("nightly", T0))
	for _, o := range []func(context.Context, journal.Store, int64) error{
		plan("app-1", 1, "i-1", "i-2"), record("app-1", 1, "co-1"), endBatch("app-1", 1, jobs.ResultSuccess, ""),
	} {
		must(t, "write", o(ctx, s, n0))
	}
	must(t, "EndRun", s.EndRun(ctx, n0, jobs.RunOutcome{Schedule: "nightly", ScheduledAt: T0, Started: T0, Ended: T0.Add(90 * time.Second),
		Result: jobs.ResultSuccess, Apps: []jobs.AppOutcome{
			{App: jobs.App{ID: "app-1"}, Result: jobs.ResultSuccess, Restarted: []string{"i-1", "i-2"}, ChangeOrders: []string{"co-1"}},
			{App: jobs.App{ID: "app-2"}, Result: jobs.ResultSuccess, Restarted: []string{"j-1"}, ChangeOrders: []string{"co-x"}},
		}}))
	// weekly day 0.5: skipped (overlap).
	must(t, "RecordFire", s.RecordFire(ctx, "weekly", T0.Add(day/2), jobs.ResultSkipped, jobs.ReasonOverlap))
	// nightly day 1: open, one batch done.
	n1 := begin(t, s, key("nightly", T0.Add(day)))
	for _, o := range []func(context.Context, journal.Store, int64) error{
		plan("app-1", 1, "i-1", "i-2"), record("app-1", 1, "co-3"), endBatch("app-1", 1, jobs.ResultSuccess, ""),
		plan("app-1", 2, "i-3"), record("app-1", 2, "co-4"),
	} {
		must(t, "write", o(ctx, s, n1))
	}
	// nightly day 2: missed.
	must(t, "RecordFire", s.RecordFire(ctx, "nightly", T0.Add(2*day), jobs.ResultSkipped, jobs.ReasonMissedDeadline))

	type line struct {
		schedule  string
		at        time.Time
		fire      bool
		result    jobs.Result
		reason    string
		duration  time.Duration
		restarted int
		cos       []string
	}
	all := []line{
		{schedule: "nightly", at: T0.Add(2 * day), fire: true, result: jobs.ResultSkipped, reason: jobs.ReasonMissedDeadline, cos: []string{}},
		{schedule: "nightly", at: T0.Add(day), restarted: 2, cos: []string{"co-3", "co-4"}},
		{schedule: "weekly", at: T0.Add(day / 2), fire: true, result: jobs.ResultSkipped, reason: jobs.ReasonOverlap, cos: []string{}},
		{schedule: "nightly", at: T0, result: jobs.ResultSuccess, duration: 89 * time.Second, restarted: 3, cos: []string{"co-1", "co-x"}}, // Started is BeginRun's (T0+1s)
	}
	tests := []struct {
		name   string
		filter journal.RunFilter
		want   []line
	}{
		{name: "every schedule, newest scheduled first, fires included", filter: journal.RunFilter{}, want: all},
		{name: "one schedule", filter: journal.RunFilter{Schedule: "nightly"}, want: []line{all[0], all[1], all[3]}},
		{name: "limited to the newest two", filter: journal.RunFilter{Limit: 2}, want: all[:2]},
		{name: "one schedule, limited", filter: journal.RunFilter{Schedule: "weekly", Limit: 5}, want: []line{all[2]}},
		{name: "an unknown schedule has no history", filter: journal.RunFilter{Schedule: "nope"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Runs(ctx, tt.filter)
			must(t, "Runs()", err)
			if len(got) != len(tt.want) {
				t.Fatalf("Runs(%+v) = %d lines %+v, want %d", tt.filter, len(got), got, len(tt.want))
			}
			for i, g := range got {
				w := tt.want[i]
				if g.Schedule != w.schedule || !g.ScheduledAt.Equal(w.at) || g.Fire != w.fire || g.Result != w.result ||
					g.Reason != w.reason || g.Duration != w.duration || g.Restarted != w.restarted || !slices.Equal(g.ChangeOrders, w.cos) {
					t.Errorf("Runs(%+v)[%d] = %+v, want %+v", tt.filter, i, g, w)
				}
				if open := g.Result == ""; open != g.Ended.IsZero() {
					t.Errorf("Runs(%+v)[%d]: result %q with Ended %v", tt.filter, i, g.Result, g.Ended)
				}
			}
		})
	}
}

func testLastTimestamps(t *testing.T, open func(t *testing.T) journal.Store) {
	s := open(t)
	ctx := context.Background()
	day := 24 * time.Hour
	// nightly: success on day 0, failure on day 1, open run on day 2.
	n0 := begin(t, s, key("nightly", T0))
	endRun(t, s, n0, key("nightly", T0), jobs.ResultSuccess, T0.Add(time.Hour))
	n1 := begin(t, s, key("nightly", T0.Add(day)))
	endRun(t, s, n1, key("nightly", T0.Add(day)), jobs.ResultFailed, T0.Add(day+time.Hour))
	begin(t, s, key("nightly", T0.Add(2*day)))
	// weekly: only skipped fires, the latest recorded first.
	must(t, "RecordFire", s.RecordFire(ctx, "weekly", T0.Add(7*day), jobs.ResultSkipped, jobs.ReasonSuspended))
	must(t, "RecordFire", s.RecordFire(ctx, "weekly", T0, jobs.ResultSkipped, jobs.ReasonDSTGap))
	// monthly: a partial run is not a success.
	m := begin(t, s, key("monthly", T0))
	endRun(t, s, m, key("monthly", T0), jobs.ResultPartial, T0.Add(2*time.Hour))

	got, err := s.LastTimestamps(ctx)
	must(t, "LastTimestamps()", err)
	tests := []struct {
		name     string
		schedule string
		want     journal.ScheduleTimes
	}{
		{name: "a failure after a success keeps the success and moves the last run; an open run counts as scheduled", schedule: "nightly",
			want: journal.ScheduleTimes{LastRun: T0.Add(day + time.Hour), LastSuccess: T0.Add(time.Hour), LastScheduled: T0.Add(2 * day)}},
		{name: "skipped fires count as scheduled, not as runs; an older fire does not lower it", schedule: "weekly",
			want: journal.ScheduleTimes{LastScheduled: T0.Add(7 * day)}},
		{name: "a partial run is a run, not a success", schedule: "monthly",
			want: journal.ScheduleTimes{LastRun: T0.Add(2 * time.Hour), LastScheduled: T0}},
		{name: "an unknown schedule has no timestamps", schedule: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := got[tt.schedule]
			if !g.LastRun.Equal(tt.want.LastRun) || !g.LastSuccess.Equal(tt.want.LastSuccess) || !g.LastScheduled.Equal(tt.want.LastScheduled) {
				t.Errorf("LastTimestamps()[%q] = %+v, want %+v", tt.schedule, g, tt.want)
			}
			ls, err := s.LastScheduled(ctx, tt.schedule)
			must(t, "LastScheduled()", err)
			if !ls.Equal(tt.want.LastScheduled) {
				t.Errorf("LastScheduled(%q) = %v, want %v", tt.schedule, ls, tt.want.LastScheduled)
			}
		})
	}
	if len(got) != 3 {
		t.Errorf("LastTimestamps() has %d schedules, want 3: %+v", len(got), got)
	}
}

func testRecordFire(t *testing.T, open func(t *testing.T) journal.Store) {
	tests := []struct {
		name      string
		prepare   func(t *testing.T, s journal.Store)
		wantLines int
		wantFire  bool
	}{
		{name: "a fire is recorded as an ended line of history", wantLines: 1, wantFire: true},
		{name: "recording the same fire twice is one line", wantLines: 1, wantFire: true, prepare: func(t *testing.T, s journal.Store) {
			must(t, "RecordFire", s.RecordFire(context.Background(), "nightly", T0, jobs.ResultSkipped, jobs.ReasonOverlap))
		}},
		{name: "a fire whose key has a run records nothing", wantLines: 1, wantFire: false, prepare: func(t *testing.T, s journal.Store) {
			begin(t, s, key("nightly", T0))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			if tt.prepare != nil {
				tt.prepare(t, s)
			}
			must(t, "RecordFire", s.RecordFire(ctx, "nightly", T0, jobs.ResultSkipped, jobs.ReasonMissedDeadline))
			runs, err := s.Runs(ctx, journal.RunFilter{})
			must(t, "Runs()", err)
			if len(runs) != tt.wantLines || runs[0].Fire != tt.wantFire {
				t.Fatalf("Runs() = %+v, want %d line(s), fire %v", runs, tt.wantLines, tt.wantFire)
			}
			if r := runs[0]; r.Fire && (!r.Started.Equal(T0) || !r.Ended.Equal(T0) || r.Duration != 0 || r.Result != jobs.ResultSkipped) {
				t.Errorf("Runs()[0] = %+v, want started = ended = %v, skipped", r, T0)
			}
		})
	}
	t.Run("a fire without a result is an error", func(t *testing.T) {
		s := open(t)
		checkErr(t, "RecordFire", s.RecordFire(context.Background(), "nightly", T0, "", jobs.ReasonOverlap), errAny)
	})
}

func testPrune(t *testing.T, open func(t *testing.T) journal.Store) {
	s := open(t)
	ctx := context.Background()
	day := 24 * time.Hour
	cutoff := T0.Add(10 * day)
	old := begin(t, s, key("nightly", T0))
	must(t, "PlanBatch", s.PlanBatch(ctx, old, "app-1", 1, []string{"i-1"}, T0))
	must(t, "RecordChangeOrder", s.RecordChangeOrder(ctx, old, "app-1", 1, "co-1"))
	must(t, "EndApp", s.EndApp(ctx, old, jobs.AppOutcome{App: jobs.App{ID: "app-1"}, Result: jobs.ResultSuccess}))
	endRun(t, s, old, key("nightly", T0), jobs.ResultSuccess, T0.Add(time.Hour), "i-1")
	must(t, "RecordFire", s.RecordFire(ctx, "nightly", T0.Add(day), jobs.ResultSkipped, jobs.ReasonOverlap))
	atCutoff := begin(t, s, key("nightly", cutoff.Add(-time.Hour)))
	endRun(t, s, atCutoff, key("nightly", cutoff.Add(-time.Hour)), jobs.ResultFailed, cutoff)
	stillOpen := begin(t, s, key("weekly", T0)) // an interrupted run never closed
	must(t, "PlanBatch", s.PlanBatch(ctx, stillOpen, "app-1", 1, []string{"i-1"}, T0))
	before, err := s.LastTimestamps(ctx)
	must(t, "LastTimestamps()", err)

	n, err := s.Prune(ctx, cutoff)
	must(t, "Prune()", err)
	if n != 2 {
		t.Errorf("Prune(%v) = %d, want 2 (the old run and the old fire)", cutoff, n)
	}
	runs, err := s.Runs(ctx, journal.RunFilter{})
	must(t, "Runs()", err)
	var ids []int64
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if want := []int64{atCutoff, stillOpen}; !slices.Equal(ids, want) {
		t.Errorf("Runs() after Prune = %v, want %v (ended at the cutoff and open runs are kept)", ids, want)
	}
	if r, ok := openRun(t, s, stillOpen); !ok || len(r.Batches) != 1 {
		t.Errorf("OpenRuns() after Prune = %+v, %v; want the open run with its batch", r, ok)
	}
	after, err := s.LastTimestamps(ctx)
	must(t, "LastTimestamps()", err)
	for name, b := range before {
		if a := after[name]; !a.LastRun.Equal(b.LastRun) || !a.LastSuccess.Equal(b.LastSuccess) || !a.LastScheduled.Equal(b.LastScheduled) {
			t.Errorf("LastTimestamps()[%q] after Prune = %+v, want %+v", name, a, b)
		}
	}
	n, err = s.Prune(ctx, cutoff)
	if err != nil || n != 0 {
		t.Errorf("Prune() again = %d, %v, want 0, nil", n, err)
	}
	// The old run's key is free again once pruned: history no longer knows it.
	if _, created, err := s.BeginRun(ctx, key("nightly", T0), rec(T0)); err != nil || !created {
		t.Errorf("BeginRun(pruned key) = created %v, %v, want created", created, err)
	}
}

func testConcurrent(t *testing.T, open func(t *testing.T) journal.Store) {
	t.Run("racing BeginRuns of one key create one run", func(t *testing.T) {
		s := open(t)
		const n = 16
		ids := make([]int64, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { ids[i], created[i], errs[i] = s.BeginRun(context.Background(), key("nightly", T0), rec(T0)) })
		}
		wg.Wait()
		count := 0
		for i := range n {
			must(t, "BeginRun", errs[i])
			if created[i] {
				count++
			}
			if ids[i] != ids[0] {
				t.Errorf("BeginRun() ids = %v, want one id", ids)
				break
			}
		}
		if count != 1 {
			t.Errorf("BeginRun() created %d runs, want 1", count)
		}
	})
	t.Run("racing BeginRuns of distinct keys create one run each", func(t *testing.T) {
		s := open(t)
		const n = 64
		ids := make([]int64, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ids[i], created[i], errs[i] = s.BeginRun(context.Background(), key(fmt.Sprintf("s%02d", i), T0), rec(T0))
			})
		}
		wg.Wait()
		seen := map[int64]int{}
		for i := range n {
			must(t, "BeginRun", errs[i])
			if !created[i] {
				t.Errorf("BeginRun(s%02d) created = false, want true", i)
			}
			if j, dup := seen[ids[i]]; dup {
				t.Errorf("BeginRun(s%02d) id = %d, the id of s%02d too; want distinct ids", i, ids[i], j)
			}
			seen[ids[i]] = i
		}
		open, err := s.OpenRuns(context.Background())
		must(t, "OpenRuns()", err)
		if len(open) != n {
			t.Errorf("OpenRuns() = %d runs, want %d", len(open), n)
		}
	})
	t.Run("a fire racing BeginRuns of its key decides it once", func(t *testing.T) {
		s := open(t)
		const n = 16
		created := make([]bool, n)
		ids := make([]int64, n)
		errs := make([]error, n+1)
		var wg sync.WaitGroup
		wg.Go(func() {
			errs[n] = s.RecordFire(context.Background(), "nightly", T0, jobs.ResultSkipped, jobs.ReasonOverlap)
		})
		for i := range n {
			wg.Go(func() { ids[i], created[i], errs[i] = s.BeginRun(context.Background(), key("nightly", T0), rec(T0)) })
		}
		wg.Wait()
		count := 0
		for i := range n + 1 {
			must(t, "write", errs[i])
			if i < n && created[i] {
				count++
			}
			if i < n && ids[i] != ids[0] {
				t.Errorf("BeginRun() ids = %v, want one id", ids)
				break
			}
		}
		runs, err := s.Runs(context.Background(), journal.RunFilter{})
		must(t, "Runs()", err)
		wantCreated := 1 // the run won: the fire found the key taken
		if len(runs) == 1 && runs[0].Fire {
			wantCreated = 0 // the fire won: every BeginRun found it
		}
		if len(runs) != 1 || count != wantCreated {
			t.Errorf("Runs() = %+v with %d BeginRuns created; want one row: a fire and none created, or a run created once", runs, count)
		}
	})
	t.Run("parallel runs write their batches", func(t *testing.T) {
		s := open(t)
		const runs, batches = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, runs)
		for r := range runs {
			wg.Go(func() {
				ctx := context.Background()
				k := key(fmt.Sprintf("s%d", r), T0)
				id, _, err := s.BeginRun(ctx, k, rec(T0))
				if err != nil {
					errs <- err
					return
				}
				for b := 1; b <= batches; b++ {
					if err := errors.Join(
						s.PlanBatch(ctx, id, "app-1", b, []string{fmt.Sprintf("i-%d", b)}, T0),
						s.RecordChangeOrder(ctx, id, "app-1", b, fmt.Sprintf("co-%d-%d", r, b)),
						s.EndBatch(ctx, id, "app-1", b, jobs.ResultSuccess, "", T0.Add(time.Minute)),
					); err != nil {
						errs <- err
						return
					}
				}
				if r%2 == 0 {
					errs <- s.EndRun(ctx, id, jobs.RunOutcome{Result: jobs.ResultSuccess, Ended: T0.Add(time.Hour)})
					return
				}
				errs <- nil
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, "writer", err)
		}
		open, err := s.OpenRuns(context.Background())
		must(t, "OpenRuns()", err)
		if len(open) != runs/2 {
			t.Fatalf("OpenRuns() = %d runs, want %d", len(open), runs/2)
		}
		for _, r := range open {
			if len(r.Batches) != batches {
				t.Errorf("run %s has %d batches, want %d", r.Key, len(r.Batches), batches)
			}
		}
		all, err := s.Runs(context.Background(), journal.RunFilter{})
		must(t, "Runs()", err)
		for _, r := range all {
			if len(r.ChangeOrders) != batches {
				t.Errorf("run %s change orders = %v, want %d", r.Schedule, r.ChangeOrders, batches)
			}
		}
	})
}

// RunFencing checks lease generations: open returns an Opener on fresh
// storage; each call of it opens another handle on that storage under a
// generation (the handles are closed by the backend when t ends).
func RunFencing(t *testing.T, open func(t *testing.T) Opener) {
	setup := func(t *testing.T) (oldS, newS journal.Store, id int64) {
		t.Helper()
		o := open(t)
		oldS, err := o(1)
		must(t, "open generation 1", err)
		id = begin(t, oldS, key("nightly", T0))
		ctx := context.Background()
		must(t, "PlanBatch", oldS.PlanBatch(ctx, id, "app-1", 1, []string{"i-1"}, T0))
		must(t, "PlanBatch", oldS.PlanBatch(ctx, id, "app-1", 2, []string{"i-2"}, T0))
		newS, err = o(2)
		must(t, "open generation 2", err)
		if _, err := o(1); !errors.Is(err, journal.ErrFenced) {
			t.Errorf("open generation 1 after 2 = %v, want ErrFenced", err)
		}
		return oldS, newS, id
	}
	writes := []struct {
		name  string
		write func(ctx context.Context, s journal.Store, id int64) error
	}{
		{name: "BeginRun", write: func(ctx context.Context, s journal.Store, _ int64) error {
			_, _, err := s.BeginRun(ctx, key("nightly", T0.Add(time.Hour)), rec(T0))
			return err
		}},
		{name: "BeginRun of an existing key", write: func(ctx context.Context, s journal.Store, _ int64) error {
			_, _, err := s.BeginRun(ctx, key("nightly", T0), rec(T0))
			return err
		}},
		{name: "PlanBatch", write: plan("app-1", 3, "i-3")},
		{name: "RecordChangeOrder", write: record("app-1", 1, "co-1")},
		{name: "EndBatch", write: endBatch("app-1", 2, jobs.ResultSuccess, "")},
		{name: "EndApp", write: func(ctx context.Context, s journal.Store, id int64) error {
			return s.EndApp(ctx, id, jobs.AppOutcome{App: jobs.App{ID: "app-1"}, Result: jobs.ResultSuccess})
		}},
		{name: "EndRun", write: func(ctx context.Context, s journal.Store, id int64) error {
			return s.EndRun(ctx, id, jobs.RunOutcome{Result: jobs.ResultSuccess, Ended: T0.Add(time.Hour)})
		}},
		{name: "RecordFire", write: func(ctx context.Context, s journal.Store, _ int64) error {
			return s.RecordFire(ctx, "weekly", T0, jobs.ResultSkipped, jobs.ReasonOverlap)
		}},
		{name: "Prune", write: func(ctx context.Context, s journal.Store, _ int64) error {
			_, err := s.Prune(ctx, T0.Add(1000*time.Hour))
			return err
		}},
	}
	for _, w := range writes {
		t.Run("a stale generation's "+w.name+" is fenced", func(t *testing.T) {
			oldS, newS, id := setup(t)
			ctx := context.Background()
			checkErr(t, w.name+" under generation 1", w.write(ctx, oldS, id), journal.ErrFenced)
			checkErr(t, w.name+" under generation 2", w.write(ctx, newS, id), nil)
		})
	}
	t.Run("the new generation takes over the old one's run and reads still work", func(t *testing.T) {
		oldS, newS, id := setup(t)
		ctx := context.Background()
		must(t, "RecordChangeOrder under generation 2", newS.RecordChangeOrder(ctx, id, "app-1", 1, "co-1"))
		for name, s := range map[string]journal.Store{"old": oldS, "new": newS} {
			r, ok := openRun(t, s, id)
			if !ok || len(r.Batches) != 2 {
				t.Fatalf("%s handle: OpenRuns() = %+v, want run %d with 2 batches", name, r, id)
			}
			if r.Batches[0].Generation != 2 || r.Batches[0].State != journal.BatchSubmitted || r.Batches[1].Generation != 1 {
				t.Errorf("%s handle: batches = %+v, want batch 1 submitted under generation 2, batch 2 still generation 1", name, r.Batches)
			}
			if r.Generation != 1 {
				t.Errorf("%s handle: run generation = %d, want 1 (not rewritten)", name, r.Generation)
			}
		}
	})
}
