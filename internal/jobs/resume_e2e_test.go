package jobs_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/e2etest"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// crashStats are the figures of the end-to-end crash test.
type crashStats struct {
	mu                 sync.Mutex
	trials, resumed    int
	reattached, found  int
	doubleRestarts     int
	perPoint           map[string]int
	resubmittedBatches int
}

// crashAt is one crash: the failpoint and which time it is met (1-based).
type crashAt struct {
	point string
	hit   int
}

// TestE2ECrashAndResume crashes a rollout of two apps (6 and 4 instances,
// batches of 2) at each failpoint, through the real SDK against the
// emulator, then resumes it from what the journal held, as a restarted
// daemon would, and checks from the emulator's record that every planned
// instance was restarted exactly once and no batch was submitted twice.
func TestE2ECrashAndResume(t *testing.T) {
	stats := &crashStats{perPoint: map[string]int{}}
	t.Cleanup(func() {
		var points []string
		for _, p := range jobs.Failpoints {
			points = append(points, fmt.Sprintf("%s=%d", p, stats.perPoint[p]))
		}
		t.Logf("crash test: %d trials, %d resumed, %d change orders re-attached (%d crashes between a submit and its record), %d batches resubmitted after an absent submit, double restarts = %d; per crash point: %s",
			stats.trials, stats.resumed, stats.reattached, stats.found, stats.resubmittedBatches, stats.doubleRestarts, strings.Join(points, " "))
	})
	var cases [][]crashAt
	for _, p := range jobs.Failpoints {
		// App A's batches are hits 1-3, app B's 4-5; the pauses are 3.
		hits := []int{1, 3, 4}
		if p == jobs.FailpointBetweenBatches {
			hits = []int{1, 2, 3}
		}
		for _, h := range hits {
			cases = append(cases, []crashAt{{p, h}})
		}
	}
	// A crash, then another during the resumed run.
	cases = append(cases,
		[]crashAt{{jobs.FailpointAfterSubmit, 1}, {jobs.FailpointAfterSubmit, 1}},
		[]crashAt{{jobs.FailpointBeforeSubmit, 2}, {jobs.FailpointChangeOrderWait, 1}},
		[]crashAt{{jobs.FailpointHealthGate, 3}, {jobs.FailpointBetweenBatches, 1}})
	for i, crashes := range cases {
		var name []string
		for _, c := range crashes {
			name = append(name, fmt.Sprintf("%s#%d", c.point, c.hit))
		}
		// Every other case replaces instance IDs on restart (the SAE default varies).
		replace := i%2 == 1
		title := strings.Join(name, " then ")
		if replace {
			title += ", replacing IDs"
		}
		t.Run(title, func(t *testing.T) {
			t.Parallel()
			crashAndResume(t, stats, crashes, replace)
		})
	}
}

func crashAndResume(t *testing.T, stats *crashStats, crashes []crashAt, replace bool) {
	w := e2etest.Start(t, e2etest.Config{Emulator: emulator.Config{ReplaceInstanceIDs: replace, Apps: []emulator.AppSpec{
		spec(appA, 6, 30*time.Second), spec(appB, 4, 30*time.Second)}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := e2eSchedule(e2ePolicy(2), appA, appB)
	at := w.Clock.Now()

	// The daemon records the plan when the run begins.
	plan, err := w.Runner(nil).Plan(ctx, s, at)
	if err != nil {
		t.Fatalf("Plan() error = %v", err)
	}
	j := jobs.NewMemJournal(jobs.Prior{})
	j.SetPlan(at, plan.Apps)
	planned := map[string][]string{}
	for _, p := range plan.Apps {
		planned[p.App.ID] = p.Instances
	}

	runner := func(c *crashAt) *jobs.Runner {
		r := w.Runner(j)
		r.Journal = j
		if c != nil {
			var mu sync.Mutex
			n := 0
			r.Failpoint = func(name string) {
				mu.Lock()
				defer mu.Unlock()
				if name == c.point {
					if n++; n == c.hit {
						panic(jobs.ErrCrash)
					}
				}
			}
		}
		return r
	}
	out := runner(&crashes[0]).Run(ctx, s, at)
	for i := range crashes {
		if out.Result != jobs.ResultInterrupted || out.Reason != jobs.ReasonCrash {
			t.Fatalf("run %d = %s/%s, want a crash at %s#%d", i, out.Result, out.Reason, crashes[i].point, crashes[i].hit)
		}
		var next *crashAt
		if i+1 < len(crashes) {
			next = &crashes[i+1]
		}
		out = runner(next).Resume(ctx, s, at, j.Prior())
	}
	if out.Result != jobs.ResultSuccess {
		t.Fatalf("Resume() = %s/%s, want success; apps %+v", out.Result, out.Reason, out.Apps)
	}
	if n := j.RunEnds(); n != 1 {
		t.Errorf("run ends reported = %d, want 1 (crashed runs report nothing)", n)
	}

	w.CheckInvariants(t, 2, appA, appB)
	double := 0
	for _, app := range []string{appA, appB} {
		restarts := w.Server.Restarts(app)
		for _, id := range planned[app] {
			if n := restarts[id]; n != 1 {
				t.Errorf("app %s: instance %s restarted %d times, want exactly 1", app, id, n)
			}
			if restarts[id] > 1 {
				double++
			}
		}
		if len(restarts) != len(planned[app]) {
			t.Errorf("app %s: %d instances restarted, want the %d planned", app, len(restarts), len(planned[app]))
		}
		seen := map[string]string{}
		for _, co := range w.RestartCOs(app) {
			key := strings.Join(sorted(co.Targets), ",")
			if prev, ok := seen[key]; ok {
				t.Errorf("app %s: batch %s submitted twice: %s and %s", app, key, prev, co.ID)
			}
			seen[key] = co.ID
		}
	}
	reattached, found := 0, 0
	for _, a := range out.Apps {
		reattached += len(a.Reattached)
	}
	for _, c := range crashes {
		if c.point == jobs.FailpointAfterSubmit {
			found++
		}
	}
	// A crash with a change order in flight must be re-attached, not redone.
	if c := crashes[len(crashes)-1]; c.point == jobs.FailpointAfterSubmit || c.point == jobs.FailpointChangeOrderWait || c.point == jobs.FailpointHealthGate {
		if reattached == 0 {
			t.Errorf("no change order re-attached after a crash at %s", c.point)
		}
	}
	resubmitted := 0
	if slices.ContainsFunc(crashes, func(c crashAt) bool { return c.point == jobs.FailpointBeforeSubmit }) {
		resubmitted = 1
	}
	stats.mu.Lock()
	defer stats.mu.Unlock()
	stats.trials++
	stats.resumed += len(crashes)
	stats.reattached += reattached
	stats.found += found
	stats.doubleRestarts += double
	stats.resubmittedBatches += resubmitted
	for _, c := range crashes {
		stats.perPoint[c.point]++
	}
}
