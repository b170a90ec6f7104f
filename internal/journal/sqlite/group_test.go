package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

// gate holds the committer still: the first group waits in its hook until
// release is closed, so the writes queued meanwhile form the next group.
type gate struct {
	sizes   chan int      // each group's size, in order
	queued  chan struct{} // one per queued write
	release chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{sizes: make(chan int, 64), queued: make(chan struct{}, 64), release: make(chan struct{})}
}

func (g *gate) hooks() groupHooks {
	return groupHooks{
		group:  func(n int) { g.sizes <- n; <-g.release },
		queued: func() { g.queued <- struct{}{} },
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// wait returns the next event of ch, failing the test after 10 s.
func wait[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		var zero T
		return zero
	}
}

// openGated opens a store at path under generation whose committer g holds.
func openGated(t *testing.T, path string, generation int64, g *gate) *Store {
	t.Helper()
	s, err := Open(path, Options{Generation: generation, hooks: g.hooks()})
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() {
		g.open()
		_ = s.Close()
	})
	return s
}

// result is what one write returned.
type result struct {
	id      int64
	created bool
	err     error
}

// holdFirstGroup starts a BeginRun of "first" and returns once the
// committer holds it, alone, in a group, plus the channel of its result.
func holdFirstGroup(t *testing.T, s *Store, g *gate) <-chan result {
	t.Helper()
	out := make(chan result, 1)
	go func() {
		id, created, err := s.BeginRun(context.Background(), gkey("first"), grec())
		out <- result{id: id, created: created, err: err}
	}()
	wait(t, "queued first write", g.queued)
	if n := wait(t, "first group", g.sizes); n != 1 {
		t.Fatalf("first group size = %d, want 1", n)
	}
	return out
}

// queue starts write and returns once it is queued.
func queue(t *testing.T, g *gate, write func() result) <-chan result {
	t.Helper()
	out := make(chan result, 1)
	go func() { out <- write() }()
	wait(t, "queued write", g.queued)
	return out
}

func mustOpenGeneration(t *testing.T, path string, generation int64) *Store {
	t.Helper()
	s, err := Open(path, Options{Generation: generation})
	if err != nil {
		t.Fatalf("Open(generation %d) = %v", generation, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func gkey(schedule string) journal.RunKey {
	return journal.RunKey{Schedule: schedule, ScheduledAt: t0}
}

func grec() journal.RunRecord {
	return journal.RunRecord{Started: t0, Deadline: t0.Add(time.Hour),
		Plan: []jobs.AppPlan{{App: jobs.App{ID: "app-1"}, Instances: []string{"i-1"}, Batches: [][]string{{"i-1"}}}}}
}

func beginRun(s *Store, schedule string) func() result {
	return func() result {
		id, created, err := s.BeginRun(context.Background(), gkey(schedule), grec())
		return result{id: id, created: created, err: err}
	}
}

func recordFire(s *Store, schedule string) func() result {
	return func() result {
		return result{err: s.RecordFire(context.Background(), schedule, t0, jobs.ResultSkipped, jobs.ReasonOverlap)}
	}
}

func planBatch(s *Store, runID int64) func() result {
	return func() result {
		return result{err: s.PlanBatch(context.Background(), runID, "app-1", 1, []string{"i-1"}, t0)}
	}
}

// refuse makes every write of schedule's times fail, after its run row was
// inserted: a BeginRun of it fails halfway, so only its savepoint's
// rollback keeps the run row out.
func refuse(t *testing.T, s *Store, schedule string) {
	t.Helper()
	if _, err := s.db.Exec(fmt.Sprintf(`CREATE TRIGGER refuse BEFORE INSERT ON schedule_times WHEN NEW.schedule = '%s'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`, schedule)); err != nil {
		t.Fatalf("create trigger: %v", err)
	}
}

func TestGroupAnswersEachWriteWithItsOwnResult(t *testing.T) {
	g := newGate()
	s := openGated(t, filepath.Join(t.TempDir(), "state.db"), 1, g)
	refuse(t, s, "refused")
	first := holdFirstGroup(t, s, g)

	// Queued in this order while the first group holds the writer: they
	// form the second group, one transaction.
	writes := []struct {
		name        string
		write       func() result
		wantCreated bool
		wantSameAs  int // index of the write whose run ID this one returns; -1: any
		wantErr     error
		wantFailure bool // an error that is none of the journal's
	}{
		{name: "a new key is created", write: beginRun(s, "a"), wantCreated: true, wantSameAs: -1},
		{name: "a write that fails halfway fails alone", write: beginRun(s, "refused"), wantSameAs: -1, wantFailure: true},
		{name: "the same key later in the group is the first's run", write: beginRun(s, "a"), wantSameAs: 0},
		{name: "a batch of an unknown run is not found", write: planBatch(s, 999), wantSameAs: -1, wantErr: journal.ErrNotFound},
		{name: "a skipped fire is recorded", write: recordFire(s, "b"), wantSameAs: -1},
		{name: "a BeginRun of the fire's key is not created", write: beginRun(s, "b"), wantSameAs: -1},
		{name: "another new key is created", write: beginRun(s, "c"), wantCreated: true, wantSameAs: -1},
	}
	outs := make([]<-chan result, len(writes))
	for i, w := range writes {
		outs[i] = queue(t, g, w.write)
	}
	g.open()
	if r := wait(t, "first write", first); r.err != nil || !r.created {
		t.Errorf("BeginRun(first) = %d, %v, %v; want created", r.id, r.created, r.err)
	}
	if n := wait(t, "second group", g.sizes); n != len(writes) {
		t.Errorf("second group size = %d, want %d (one transaction for every write queued)", n, len(writes))
	}
	got := make([]result, len(writes))
	for i, w := range writes {
		got[i] = wait(t, w.name, outs[i])
		r := got[i]
		switch {
		case w.wantFailure:
			if r.err == nil || errors.Is(r.err, journal.ErrFenced) {
				t.Errorf("%s: error = %v, want the trigger's", w.name, r.err)
			}
		case w.wantErr != nil:
			if !errors.Is(r.err, w.wantErr) {
				t.Errorf("%s: error = %v, want %v", w.name, r.err, w.wantErr)
			}
		case r.err != nil:
			t.Errorf("%s: error = %v, want nil", w.name, r.err)
		}
		if r.created != w.wantCreated {
			t.Errorf("%s: created = %v, want %v", w.name, r.created, w.wantCreated)
		}
		if w.wantSameAs >= 0 && r.id != got[w.wantSameAs].id {
			t.Errorf("%s: run ID = %d, want %d", w.name, r.id, got[w.wantSameAs].id)
		}
	}

	runs, err := s.Runs(context.Background(), journal.RunFilter{})
	if err != nil {
		t.Fatalf("Runs() = %v", err)
	}
	var names []string
	for _, r := range runs {
		names = append(names, fmt.Sprintf("%s fire=%v", r.Schedule, r.Fire))
	}
	want := []string{"c fire=false", "b fire=true", "a fire=false", "first fire=false"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("Runs() = %v, want %v (no row of the refused BeginRun)", names, want)
	}
}

func TestLoneWritesAreNotHeldForAGroup(t *testing.T) {
	g := newGate()
	g.open()
	s := openGated(t, filepath.Join(t.TempDir(), "state.db"), 1, g)
	for _, name := range []string{"a", "b", "c"} {
		if r := beginRun(s, name)(); r.err != nil || !r.created {
			t.Fatalf("BeginRun(%s) = %d, %v, %v; want created", name, r.id, r.created, r.err)
		}
		<-g.queued
		if n := wait(t, "group", g.sizes); n != 1 {
			t.Errorf("group of a lone BeginRun(%s) = %d writes, want 1", name, n)
		}
	}
}

func TestGroupedWritesAreFenced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	g := newGate()
	old := openGated(t, path, 1, g)
	first := holdFirstGroup(t, old, g)
	outs := []<-chan result{
		queue(t, g, beginRun(old, "a")),
		queue(t, g, recordFire(old, "b")),
		queue(t, g, beginRun(old, "first")),
	}
	// A newer generation takes the lease while generation 1's groups wait.
	newer := mustOpenGeneration(t, path, 2)
	g.open()
	for i, ch := range append([]<-chan result{first}, outs...) {
		if r := wait(t, "fenced write", ch); !errors.Is(r.err, journal.ErrFenced) || r.created {
			t.Errorf("write %d under generation 1 = created %v, %v; want ErrFenced", i, r.created, r.err)
		}
	}
	if r := beginRun(newer, "a")(); r.err != nil || !r.created {
		t.Errorf("BeginRun(a) under generation 2 = %v, %v; want created", r.created, r.err)
	}
}

func TestCloseFailsQueuedWrites(t *testing.T) {
	g := newGate()
	s := openGated(t, filepath.Join(t.TempDir(), "state.db"), 1, g)
	first := holdFirstGroup(t, s, g)
	queued := []<-chan result{queue(t, g, beginRun(s, "a")), queue(t, g, recordFire(s, "b"))}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close answers the queued writes before it waits for the group in
	// progress, which the gate still holds.
	for i, ch := range queued {
		if r := wait(t, "queued write's answer", ch); !errors.Is(r.err, ErrClosed) {
			t.Errorf("queued write %d during Close = %v, want ErrClosed", i, r.err)
		}
	}
	g.open()
	if r := wait(t, "first write", first); r.err != nil || !r.created {
		t.Errorf("BeginRun(first), in progress during Close = %v, %v; want created", r.created, r.err)
	}
	if err := wait(t, "Close", closed); err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
	if r := beginRun(s, "c")(); !errors.Is(r.err, ErrClosed) {
		t.Errorf("BeginRun() after Close = %v, want ErrClosed", r.err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() again = %v, want nil", err)
	}
}

func TestCanceledWhileQueuedIsNotWritten(t *testing.T) {
	g := newGate()
	s := openGated(t, filepath.Join(t.TempDir(), "state.db"), 1, g)
	first := holdFirstGroup(t, s, g)
	ctx, cancel := context.WithCancel(context.Background())
	out := queue(t, g, func() result {
		id, created, err := s.BeginRun(ctx, gkey("a"), grec())
		return result{id: id, created: created, err: err}
	})
	cancel()
	if r := wait(t, "canceled write", out); !errors.Is(r.err, context.Canceled) || r.created {
		t.Errorf("BeginRun(a) canceled while queued = created %v, %v; want context.Canceled", r.created, r.err)
	}
	g.open()
	if r := wait(t, "first write", first); r.err != nil {
		t.Fatalf("BeginRun(first) = %v", r.err)
	}
	if r := beginRun(s, "a")(); r.err != nil || !r.created {
		t.Errorf("BeginRun(a) after its canceled attempt = created %v, %v; want created (nothing was written)", r.created, r.err)
	}
}

func TestConcurrentBeginRuns(t *testing.T) {
	const n = 300
	tests := []struct {
		name        string
		schedule    func(i int) string
		wantCreated int
		wantIDs     int // distinct run IDs returned by the BeginRuns
	}{
		{name: "distinct keys are each created with their own ID", schedule: func(i int) string { return fmt.Sprintf("s%03d", i) },
			wantCreated: n, wantIDs: n},
		{name: "one key is created once, every caller gets its ID", schedule: func(int) string { return "one" },
			wantCreated: 1, wantIDs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
			if err != nil {
				t.Fatalf("Open() = %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			got := make([]result, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { got[i] = beginRun(s, tt.schedule(i))() })
			}
			wg.Wait()
			created, ids := 0, map[int64]bool{}
			for i, r := range got {
				if r.err != nil {
					t.Fatalf("BeginRun(%s) = %v", tt.schedule(i), r.err)
				}
				if r.created {
					created++
				}
				ids[r.id] = true
			}
			if created != tt.wantCreated || len(ids) != tt.wantIDs {
				t.Errorf("%d concurrent BeginRuns: %d created, %d distinct IDs; want %d, %d", n, created, len(ids), tt.wantCreated, tt.wantIDs)
			}
			runs, err := s.Runs(context.Background(), journal.RunFilter{})
			if err != nil || len(runs) != tt.wantIDs {
				t.Errorf("Runs() = %d rows, %v; want %d", len(runs), err, tt.wantIDs)
			}
		})
	}
}
