package metrics

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// collected returns "label=value,..." of every series f hands out, in order.
func collected(t *testing.T, f *family) []string {
	t.Helper()
	ch := make(chan prometheus.Metric, len(f.byKey)+1)
	familyCollector{mu: &sync.Mutex{}, fams: []*family{f}}.Collect(ch)
	close(ch)
	var out []string
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatalf("Write() error = %v", err)
		}
		s := ""
		for _, lp := range d.GetLabel() {
			s += lp.GetName() + "=" + lp.GetValue() + ","
		}
		out = append(out, s)
	}
	return out
}

// gathered returns "label=value,..." of every series of name in the order
// the registry's Gather returns them (it sorts every family).
func gathered(t *testing.T, reg *prometheus.Registry, name string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := ""
			for _, lp := range m.GetLabel() {
				s += lp.GetName() + "=" + lp.GetValue() + ","
			}
			out = append(out, s)
		}
	}
	return out
}

func TestFamilyHandsOutSeriesInTheRegistrysOrder(t *testing.T) {
	tests := []struct {
		name   string
		labels []string
		// commits are the series created before each commit (label
		// values in the family's label order).
		commits [][][]string
		// deletes are applied before the last commit: label -> values.
		deletes map[string][]string
	}{
		{
			name:   "label names out of order: sorted by result, then schedule",
			labels: []string{"schedule", "result"},
			commits: [][][]string{
				{{"b", "success"}, {"a", "success"}, {"b", "failed"}, {"a", "failed"}},
			},
		},
		{
			name:   "a run's apps arrive after the schedules, between them",
			labels: []string{"schedule", "app", "result"},
			commits: [][][]string{
				{{"s1", "app-b", "success"}, {"s3", "app-a", "success"}},
				{{"s2", "app-a", "failed"}},
				{{"s0", "app-c", "success"}, {"s2", "app-a", "success"}, {"s9", "app-0", "failed"}},
			},
		},
		{
			name:   "a reload removes a schedule and brings one back",
			labels: []string{"schedule"},
			commits: [][][]string{
				{{"night"}, {"day"}, {"noon"}},
				{{"day"}, {"evening"}},
			},
			deletes: map[string][]string{"schedule": {"day", "noon"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFamily("test_total", "Test.", counterKind, nil, tt.labels...)
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(familyCollector{mu: &sync.Mutex{}, fams: []*family{f}})
			for i, batch := range tt.commits {
				if i == len(tt.commits)-1 && tt.deletes != nil {
					for label, vs := range tt.deletes {
						f.deleteWhere(label, set(vs))
					}
				}
				for _, values := range batch {
					f.get(values...).add(1)
				}
				got, want := collected(t, f), gathered(t, reg, "test_total")
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("after commit %d: collect() = %v, want the registry's order %v", i, got, want)
				}
			}
		})
	}
}

func TestFamilyDeleteThenRecreateStartsAtZero(t *testing.T) {
	f := newFamily("test_total", "Test.", counterKind, nil, "schedule")
	reg := prometheus.NewRegistry()
	reg.MustRegister(familyCollector{mu: &sync.Mutex{}, fams: []*family{f}})
	f.get("web").add(3)
	f.deleteWhere("schedule", set([]string{"web"}))
	f.get("web")
	if got := mustValue(t, reg, "test_total", map[string]string{"schedule": "web"}); got != 0 {
		t.Errorf("test_total{schedule=web} after delete and get = %v, want 0", got)
	}
	if got := count(t, reg, "test_total", nil); got != 1 {
		t.Errorf("series of test_total = %d, want 1", got)
	}
}

func TestFamilyHistogramMatchesClientGolangs(t *testing.T) {
	observations := []float64{0, 30, 31, 45, 299.5, 3600, 28800, 28801, 100000}
	f := newFamily("test_seconds", "Test.", histogramKind, RunDurationBuckets, "schedule")
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ref_seconds", Help: "Ref.", Buckets: RunDurationBuckets})
	s := f.get("web")
	for _, x := range observations {
		s.observe(x)
		ref.Observe(x)
	}
	var got, want dto.Metric
	if err := s.Write(&got); err != nil {
		t.Fatalf("Write() error = %v", err)
	}
	if err := ref.Write(&want); err != nil {
		t.Fatalf("reference Write() error = %v", err)
	}
	gh, wh := got.GetHistogram(), want.GetHistogram()
	if gh.GetSampleCount() != wh.GetSampleCount() || gh.GetSampleSum() != wh.GetSampleSum() {
		t.Errorf("count, sum = %d, %v, want %d, %v", gh.GetSampleCount(), gh.GetSampleSum(), wh.GetSampleCount(), wh.GetSampleSum())
	}
	if len(gh.GetBucket()) != len(wh.GetBucket()) {
		t.Fatalf("buckets = %d, want %d", len(gh.GetBucket()), len(wh.GetBucket()))
	}
	for i, b := range gh.GetBucket() {
		w := wh.GetBucket()[i]
		if b.GetUpperBound() != w.GetUpperBound() || b.GetCumulativeCount() != w.GetCumulativeCount() {
			t.Errorf("bucket %d = le %v: %d, want le %v: %d", i, b.GetUpperBound(), b.GetCumulativeCount(), w.GetUpperBound(), w.GetCumulativeCount())
		}
	}
}

// TestScrapesRaceWithUpdates is for -race: scrapes while runs are observed
// and schedules reloaded.
func TestScrapesRaceWithUpdates(t *testing.T) {
	m, reg := newTest(t, sched("a"), sched("b"))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				t.Errorf("Gather() error = %v", err)
				return
			}
		}
	}()
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		name := []string{"a", "b", "c"}[rng.Intn(3)]
		app := jobs.App{ID: fmt.Sprintf("app-%d", rng.Intn(5)), Name: "svc", NamespaceID: "cn-hangzhou:prod"}
		observeAll(m, runEvents(name, jobs.ResultSuccess, jobs.ResultSuccess, app))
		m.SetNextRun(name, t0.Add(time.Duration(i)*time.Minute))
		if i%50 == 49 {
			m.SetSchedules([]ScheduleInfo{sched(name), sched("z")})
		}
	}
	m.SetSchedules([]ScheduleInfo{sched("a"), sched("c")})
	close(done)
	wg.Wait()
	for _, name := range []string{"a", "b", "c"} {
		want := len(RunResults)
		if name == "b" {
			want = 0
		}
		if got := count(t, reg, "sae_scheduler_runs_total", map[string]string{"schedule": name}); got != want {
			t.Errorf("runs_total series of %s after the last reload = %d, want %d", name, got, want)
		}
	}
}
