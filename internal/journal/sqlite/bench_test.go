package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
)

var benchT0 = time.Date(2024, 3, 10, 7, 0, 0, 0, time.UTC)

// runStart is what a run's start writes ahead: the run row and, with
// withBatch, its first batch row, before the first RestartInstances.
func runStart(ctx context.Context, s journal.Store, schedule string, i int, withBatch bool) error {
	at := benchT0.Add(time.Duration(i) * time.Second)
	id, _, err := s.BeginRun(ctx, journal.RunKey{Schedule: schedule, ScheduledAt: at}, journal.RunRecord{
		Plan: []jobs.AppPlan{{App: jobs.App{ID: "app-1"}, Instances: []string{"i-1", "i-2", "i-3", "i-4"},
			Batches: [][]string{{"i-1", "i-2"}, {"i-3", "i-4"}}}},
		Started: at, Deadline: at.Add(2 * time.Hour),
	})
	if err != nil || !withBatch {
		return err
	}
	return s.PlanBatch(ctx, id, "app-1", 1, []string{"i-1", "i-2"}, at)
}

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "state.db"), sqlite.Options{})
	if err != nil {
		b.Fatalf("Open() = %v", err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkRunStart measures BeginRun + PlanBatch, one run start per op.
func BenchmarkRunStart(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if err := runStart(ctx, s, "bench", i, true); err != nil {
			b.Fatalf("run start %d: %v", i, err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(i), "µs/run-start")
}

// BenchmarkRunStartLatency records 1,000 run starts per op and reports the
// latency percentiles of a single run start: one after the other
// (sequential), 1,000 schedules firing within one second (paced: one start
// per millisecond, each on its own goroutine), and all 1,000 at the same
// instant (burst: the queue behind SQLite's single writer).
func BenchmarkRunStartLatency(b *testing.B) {
	const starts = 1000
	for _, c := range []struct {
		mode      string
		withBatch bool
	}{
		{mode: "sequential", withBatch: false}, {mode: "sequential", withBatch: true},
		{mode: "paced", withBatch: false}, {mode: "paced", withBatch: true},
		{mode: "burst", withBatch: false}, {mode: "burst", withBatch: true},
	} {
		mode := c.mode
		name := mode + "/BeginRun"
		if c.withBatch {
			name += "+PlanBatch"
		}
		b.Run(name, func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			var lat []time.Duration
			round := 0
			for b.Loop() {
				got := make([]time.Duration, starts)
				one := func(i int) {
					t0 := time.Now()
					if err := runStart(ctx, s, fmt.Sprintf("s%d", i), round, c.withBatch); err != nil {
						b.Errorf("run start %d: %v", i, err)
					}
					got[i] = time.Since(t0)
				}
				switch mode {
				case "sequential":
					for i := range starts {
						one(i)
					}
				case "paced":
					var wg sync.WaitGroup
					tick := time.NewTicker(time.Second / starts)
					for i := range starts {
						<-tick.C
						wg.Go(func() { one(i) })
					}
					tick.Stop()
					wg.Wait()
				case "burst":
					var wg sync.WaitGroup
					for i := range starts {
						wg.Go(func() { one(i) })
					}
					wg.Wait()
				}
				lat = append(lat, got...)
				round++
			}
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}
