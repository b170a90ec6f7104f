package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The interrupted run of the resume tests started 10 minutes before the
// fake clock's t0, when the daemon restarts.
var runStart = t0.Add(-10 * time.Minute)

// resumeFake resumes s from prior against f with journal j.
func resumeFake(t *testing.T, f *fakeSAE, s Schedule, prior Prior, j *MemJournal, rec *recorder, opts ...func(*Runner)) RunOutcome {
	t.Helper()
	opts = append([]func(*Runner){func(r *Runner) { r.Journal = j }}, opts...)
	return driveFake(t, f, s, rec, func(r *Runner) RunOutcome {
		return r.Resume(context.Background(), s, runStart, prior)
	}, opts...)
}

// endedRow is batch index of ids, submitted and ended successfully before
// the crash with its change order applied at the fake.
func endedRow(f *fakeSAE, index int, ids []string) PriorBatch {
	at := runStart.Add(time.Duration(index) * 2 * time.Minute)
	co := f.restartedBefore("app-1", ids, at, time.Minute)
	return PriorBatch{AppID: "app-1", Index: index, Instances: ids, Submitted: at, ChangeOrderID: co,
		Ended: true, Result: ResultSuccess, EndedAt: at.Add(time.Minute)}
}

func TestResume(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch
		// noPlan: the journal has no plan for the app.
		noPlan         bool
		wantApp        Result
		wantReason     string
		wantSubmits    int   // RestartInstances calls of the resumed run
		wantFinds      int   // FindRestartChangeOrder calls
		wantReattached int   // change orders re-attached
		wantIndices    []int // the app's batches, recorded and new
		wantRows       int   // journal rows the resumed run wrote
		wantRestarted  int
		check          func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome)
	}{
		{
			name: "a recorded change order still running is re-attached, not resubmitted",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				co := f.restartedBefore("app-1", plan.Batches[0], t0.Add(-30*time.Second), time.Minute)
				return []PriorBatch{{AppID: "app-1", Index: 1, Instances: plan.Batches[0], Submitted: t0.Add(-30 * time.Second), ChangeOrderID: co}}
			},
			wantApp: ResultSuccess, wantSubmits: 2, wantReattached: 1, wantIndices: []int{1, 2, 3}, wantRows: 2, wantRestarted: 6,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				// It was watched to its end: the next batch came after it.
				if first, second := f.cos[out.ChangeOrders[0]], f.cos[out.ChangeOrders[1]]; second.created.Before(first.ends) {
					t.Errorf("batch 2 submitted %s, before the re-attached change order ended %s", second.created, first.ends)
				}
			},
		},
		{
			name: "a recorded change order that finished during the outage is re-attached",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				co := f.restartedBefore("app-1", plan.Batches[0], t0.Add(-5*time.Minute), time.Minute)
				return []PriorBatch{{AppID: "app-1", Index: 1, Instances: plan.Batches[0], Submitted: t0.Add(-5 * time.Minute), ChangeOrderID: co}}
			},
			wantApp: ResultSuccess, wantSubmits: 2, wantReattached: 1, wantIndices: []int{1, 2, 3}, wantRows: 2, wantRestarted: 6,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				if n := f.calls["poll/"+out.ChangeOrders[0]]; n != 1 {
					t.Errorf("polls of the finished change order = %d, want 1", n)
				}
			},
		},
		{
			name: "a re-attached change order that failed fails the batch by the normal verdict",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				co := f.restartedBefore("app-1", plan.Batches[0], t0.Add(-30*time.Second), time.Minute)
				f.cos[co].final = COFailed
				return []PriorBatch{{AppID: "app-1", Index: 1, Instances: plan.Batches[0], Submitted: t0.Add(-30 * time.Second), ChangeOrderID: co}}
			},
			wantApp: ResultFailed, wantReason: CodeChangeOrderFailed, wantReattached: 1, wantIndices: []int{1},
		},
		{
			name: "an unrecorded submit that SAE has is found, recorded and re-attached, not resubmitted",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				f.restartedBefore("app-1", plan.Batches[0], t0.Add(-20*time.Second), time.Minute)
				return []PriorBatch{{AppID: "app-1", Index: 1, Instances: plan.Batches[0], Submitted: t0.Add(-21 * time.Second)}}
			},
			wantApp: ResultSuccess, wantSubmits: 2, wantFinds: 1, wantReattached: 1, wantIndices: []int{1, 2, 3}, wantRows: 2, wantRestarted: 6,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				if row, _ := j.Row("app-1", 1); row.ChangeOrderID != out.Reattached[0] {
					t.Errorf("journal's change order of batch 1 = %q, want the one found, %q", row.ChangeOrderID, out.Reattached[0])
				}
			},
		},
		{
			name: "an unrecorded submit that SAE does not have is submitted once, under its row",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				return []PriorBatch{{AppID: "app-1", Index: 1, Instances: plan.Batches[0], Submitted: t0.Add(-20 * time.Second)}}
			},
			wantApp: ResultSuccess, wantSubmits: 3, wantFinds: 1, wantIndices: []int{1, 2, 3}, wantRows: 2, wantRestarted: 6,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				if row, _ := j.Row("app-1", 1); row.ChangeOrderID == "" || !sameSet(row.Instances, f.restarts[0].ids) {
					t.Errorf("journal row 1 = %+v, want the first submit's change order and instances %v", row, f.restarts[0].ids)
				}
			},
		},
		{
			name: "an unrecorded submit SAE cannot tell about fails the app unresolved, nothing submitted",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				f.failWith("FindRestartChangeOrder", saeErr(ClassAmbiguous, "FindRestartChangeOrder", ""))
				return []PriorBatch{{AppID: "app-1", Index: 1, Instances: plan.Batches[0], Submitted: t0.Add(-20 * time.Second)}}
			},
			wantApp: ResultFailed, wantReason: CodeUnresolved, wantFinds: 1,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				if len(out.NotRestarted) != 6 {
					t.Errorf("not restarted = %v, want the 6 planned", out.NotRestarted)
				}
			},
		},
		{
			name: "ended batches are not redone; the rest continue the numbering",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				return []PriorBatch{endedRow(f, 1, plan.Batches[0]), endedRow(f, 2, plan.Batches[1])}
			},
			wantApp: ResultSuccess, wantSubmits: 1, wantIndices: []int{1, 2, 3}, wantRows: 1, wantRestarted: 6,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				if row, ok := j.Row("app-1", 3); !ok || !slices.Equal(row.Instances, []string{"app-1-i04", "app-1-i05"}) {
					t.Errorf("journal row 3 = %+v, want app-1-i04 app-1-i05", row)
				}
			},
		},
		{
			name: "replacements made by the interrupted run are not restarted",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				a.replace = true
				return []PriorBatch{endedRow(f, 1, plan.Batches[0])}
			},
			wantApp: ResultSuccess, wantSubmits: 2, wantIndices: []int{1, 2, 3}, wantRows: 2, wantRestarted: 6,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				for _, r := range f.restarts {
					for _, id := range r.ids {
						if strings.HasSuffix(id, "-r") {
							t.Errorf("replacement %s restarted by %s", id, r.co)
						}
					}
				}
			},
		},
		{
			name:   "without a recorded plan, instances created after the run started are left",
			noPlan: true,
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				a.instances = append(a.instances, Instance{ID: "app-1-new", ContainerStatus: "Running", HealthStatus: "Healthy", CreateTime: runStart.Add(time.Minute)})
				return []PriorBatch{endedRow(f, 1, plan.Batches[0])}
			},
			wantApp: ResultSuccess, wantSubmits: 2, wantIndices: []int{1, 2, 3}, wantRows: 2, wantRestarted: 6,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				for _, r := range f.restarts {
					if slices.Contains(r.ids, "app-1-new") {
						t.Errorf("instance created after the run started restarted by %s", r.co)
					}
				}
			},
		},
		{
			name: "a never-submitted batch whose instance vanished is replanned under new rows",
			setup: func(f *fakeSAE, a *fakeApp, plan AppPlan) []PriorBatch {
				a.instances = slices.DeleteFunc(a.instances, func(in Instance) bool { return in.ID == plan.Batches[0][0] })
				return []PriorBatch{{AppID: "app-1", Index: 1, Instances: plan.Batches[0], Submitted: t0.Add(-20 * time.Second)}}
			},
			wantApp: ResultSuccess, wantSubmits: 3, wantFinds: 1, wantIndices: []int{2, 3, 4}, wantRows: 3, wantRestarted: 5,
			check: func(t *testing.T, f *fakeSAE, j *MemJournal, out AppOutcome) {
				if len(out.Vanished) != 1 {
					t.Errorf("vanished = %v, want the one removed", out.Vanished)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			a := f.addApp("app-1", "web-1", 6)
			p := testPolicy()
			plan := PlanApp(a.App, a.instances, p, runStart)
			prior := Prior{Started: runStart, Plans: []AppPlan{plan}}
			if tt.noPlan {
				prior.Plans = nil
			}
			prior.Batches = tt.setup(f, a, plan)
			j := NewMemJournal(prior)
			before := f.calls["RestartInstances"]
			rec := &recorder{}
			out := resumeFake(t, f, schedule(p, byID("app-1")...), prior, j, rec)
			got := appOutcome(t, out, "app-1")
			if got.Result != tt.wantApp || got.Reason != tt.wantReason {
				t.Errorf("app = %s/%s (%s), want %s/%s", got.Result, got.Reason, got.Message, tt.wantApp, tt.wantReason)
			}
			if n := f.calls["RestartInstances"] - before; n != tt.wantSubmits {
				t.Errorf("RestartInstances calls = %d, want %d", n, tt.wantSubmits)
			}
			if n := f.calls["FindRestartChangeOrder"]; n != tt.wantFinds {
				t.Errorf("FindRestartChangeOrder calls = %d, want %d", n, tt.wantFinds)
			}
			if len(got.Reattached) != tt.wantReattached {
				t.Errorf("re-attached = %v, want %d", got.Reattached, tt.wantReattached)
			}
			var idx []int
			for _, b := range got.Batches {
				idx = append(idx, b.Index)
			}
			if !slices.Equal(idx, tt.wantIndices) {
				t.Errorf("batch indices = %v, want %v", idx, tt.wantIndices)
			}
			if j.Planned != tt.wantRows {
				t.Errorf("journal rows written = %d, want %d", j.Planned, tt.wantRows)
			}
			if len(got.Restarted) != tt.wantRestarted {
				t.Errorf("restarted = %v, want %d", got.Restarted, tt.wantRestarted)
			}
			if n := len(rec.kindsOf(EventBatchReattached)); n != tt.wantReattached {
				t.Errorf("%s events = %d, want %d", EventBatchReattached, n, tt.wantReattached)
			}
			f.assertSafe(t, 2)
			if tt.check != nil {
				tt.check(t, f, j, got)
			}
		})
	}
}

func TestResumeLeavesEndedAppsAndStartsTheRest(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 4)
	f.addApp("app-2", "web-2", 4)
	f.addApp("app-3", "web-3", 4)
	p := testPolicy()
	ended := AppOutcome{App: App{ID: "app-1", Name: "web-1"}, Result: ResultSuccess,
		Restarted: []string{"app-1-i00", "app-1-i01", "app-1-i02", "app-1-i03"}, Started: runStart, Ended: runStart.Add(5 * time.Minute)}
	row := endedRowOf(f, "app-2", 1, []string{"app-2-i00", "app-2-i01"})
	prior := Prior{Started: runStart, Ended: []AppOutcome{ended}, Batches: []PriorBatch{row}}
	j := NewMemJournal(prior)
	out := resumeFake(t, f, schedule(p, byID("app-1", "app-2", "app-3")...), prior, j, nil)

	if out.Result != ResultSuccess || !out.Started.Equal(runStart) {
		t.Errorf("Resume() = %s started %s, want success started %s", out.Result, out.Started, runStart)
	}
	if got := appOutcome(t, out, "app-1"); got.Result != ended.Result || !got.Ended.Equal(ended.Ended) || len(got.Restarted) != 4 {
		t.Errorf("ended app = %+v, want its recorded outcome %+v", got, ended)
	}
	for _, action := range []string{"ListInstances", "DescribeApplicationStatus", "RestartInstances", "FindRestartChangeOrder"} {
		if n := f.calls[action+"/app-1"]; n != 0 {
			t.Errorf("%s calls for the ended app = %d, want 0", action, n)
		}
	}
	if got := appOutcome(t, out, "app-2"); got.Result != ResultSuccess || len(got.Batches) != 2 || got.Batches[1].Index != 2 {
		t.Errorf("app in progress = %s with batches %+v, want success, batch 2 after the recorded 1", got.Result, got.Batches)
	}
	if got := appOutcome(t, out, "app-3"); got.Result != ResultSuccess || len(got.Restarted) != 4 {
		t.Errorf("app not started = %s restarted %v, want success with 4", got.Result, got.Restarted)
	}
	if n := f.calls["RestartInstances/app-2"]; n != 1 {
		t.Errorf("RestartInstances for the app in progress = %d, want 1", n)
	}
	f.assertSafe(t, 2)
}

func endedRowOf(f *fakeSAE, app string, index int, ids []string) PriorBatch {
	at := runStart.Add(time.Duration(index) * 2 * time.Minute)
	co := f.restartedBefore(app, ids, at, time.Minute)
	return PriorBatch{AppID: app, Index: index, Instances: ids, Submitted: at, ChangeOrderID: co,
		Ended: true, Result: ResultSuccess, EndedAt: at.Add(time.Minute)}
}

func TestInterrupted(t *testing.T) {
	s := schedule(testPolicy(), byID("app-1", "app-2", "app-3")...)
	now := t0.Add(3 * time.Hour)
	plan := func(app string, ids ...string) AppPlan { return AppPlan{App: App{ID: app}, Instances: ids} }
	tests := []struct {
		name          string
		prior         Prior
		wantApps      []string // app IDs in order
		wantResult    map[string]Result
		wantRestarted map[string]int
		wantNot       map[string][]string
		wantMessage   map[string]string // a substring
		wantCOs       map[string]int
	}{
		{
			name:     "nothing started: every planned instance is left",
			prior:    Prior{Started: runStart, Plans: []AppPlan{plan("app-1", "a", "b")}},
			wantApps: []string{"app-1"}, wantResult: map[string]Result{"app-1": ResultInterrupted},
			wantNot: map[string][]string{"app-1": {"a", "b"}}, wantRestarted: map[string]int{"app-1": 0},
		},
		{
			name: "an ended app keeps its outcome; a successful batch counts as restarted",
			prior: Prior{Started: runStart,
				Plans:   []AppPlan{plan("app-1", "a", "b"), plan("app-2", "c", "d", "e", "f")},
				Ended:   []AppOutcome{{App: App{ID: "app-1"}, Result: ResultSuccess, Restarted: []string{"a", "b"}}},
				Batches: []PriorBatch{{AppID: "app-2", Index: 1, Instances: []string{"c", "d"}, ChangeOrderID: "co-1", Ended: true, Result: ResultSuccess}}},
			wantApps:      []string{"app-1", "app-2"},
			wantResult:    map[string]Result{"app-1": ResultSuccess, "app-2": ResultInterrupted},
			wantRestarted: map[string]int{"app-1": 2, "app-2": 2},
			wantNot:       map[string][]string{"app-2": {"e", "f"}},
			wantCOs:       map[string]int{"app-2": 1},
		},
		{
			name: "a change order in flight and an unrecorded submit are named, not listed as left",
			prior: Prior{Started: runStart,
				Plans: []AppPlan{plan("app-2", "c", "d", "e", "f", "g", "h")},
				Batches: []PriorBatch{
					{AppID: "app-2", Index: 1, Instances: []string{"c", "d"}, ChangeOrderID: "co-1"},
					{AppID: "app-2", Index: 2, Instances: []string{"e", "f"}},
				}},
			wantApps:      []string{"app-2"},
			wantResult:    map[string]Result{"app-2": ResultInterrupted},
			wantRestarted: map[string]int{"app-2": 0},
			wantNot:       map[string][]string{"app-2": {"g", "h"}},
			wantMessage:   map[string]string{"app-2": "batches 2 may have been submitted"},
			wantCOs:       map[string]int{"app-2": 1},
		},
		{
			name:     "batches of an app missing from the plan are reported",
			prior:    Prior{Batches: []PriorBatch{{AppID: "app-3", Index: 1, Instances: []string{"x"}, ChangeOrderID: "co-9"}}},
			wantApps: []string{"app-3"}, wantResult: map[string]Result{"app-3": ResultInterrupted},
			wantMessage: map[string]string{"app-3": "co-9"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Interrupted(s, runStart, tt.prior, now)
			if out.Result != ResultInterrupted || !out.Ended.Equal(now) || !out.Started.Equal(runStart) {
				t.Errorf("Interrupted() = %s %s..%s, want interrupted %s..%s", out.Result, out.Started, out.Ended, runStart, now)
			}
			var ids []string
			for _, a := range out.Apps {
				ids = append(ids, a.App.ID)
			}
			if !slices.Equal(ids, tt.wantApps) {
				t.Fatalf("apps = %v, want %v", ids, tt.wantApps)
			}
			for _, a := range out.Apps {
				id := a.App.ID
				if want, ok := tt.wantResult[id]; ok && a.Result != want {
					t.Errorf("app %s result = %s, want %s", id, a.Result, want)
				}
				if want, ok := tt.wantRestarted[id]; ok && len(a.Restarted) != want {
					t.Errorf("app %s restarted = %v, want %d", id, a.Restarted, want)
				}
				if want, ok := tt.wantNot[id]; ok && !slices.Equal(a.NotRestarted, want) {
					t.Errorf("app %s not restarted = %v, want %v", id, a.NotRestarted, want)
				}
				if want, ok := tt.wantMessage[id]; ok && !strings.Contains(a.Message, want) {
					t.Errorf("app %s message = %q, want it to contain %q", id, a.Message, want)
				}
				if want, ok := tt.wantCOs[id]; ok && len(a.ChangeOrders) != want {
					t.Errorf("app %s change orders = %v, want %d", id, a.ChangeOrders, want)
				}
			}
		})
	}
}

func TestFailpointsFireInOrder(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 4)
	var mu sync.Mutex
	var got []string
	out := runFake(t, context.Background(), f, schedule(testPolicy(), byID("app-1")...), nil, func(r *Runner) {
		r.Failpoint = func(name string) {
			mu.Lock()
			got = append(got, name)
			mu.Unlock()
		}
	})
	if out.Result != ResultSuccess {
		t.Fatalf("Run() = %s, want success", out.Result)
	}
	batch := []string{FailpointBeforeSubmit, FailpointAfterSubmit, FailpointChangeOrderWait, FailpointHealthGate}
	want := append(append(slices.Clone(batch), FailpointBetweenBatches), batch...)
	if !slices.Equal(got, want) {
		t.Errorf("failpoints = %v, want %v", got, want)
	}
}

// TestCrashAndResume crashes a run of two apps at every failpoint (the
// first, a middle and the last time it is met) and resumes it from the
// journal: every instance is restarted exactly once, no batch twice.
func TestCrashAndResume(t *testing.T) {
	for _, fp := range Failpoints {
		// App 1 has batches 1-3, app 2 batches 1-2: hits 1, 3 and 4 are app
		// 1's first and last batch and app 2's first; the pauses are 3.
		hits := []int{1, 3, 4}
		if fp == FailpointBetweenBatches {
			hits = []int{1, 2, 3}
		}
		for _, hit := range hits {
			t.Run(fmt.Sprintf("%s/hit %d", fp, hit), func(t *testing.T) {
				f := newFake()
				f.addApp("app-1", "web-1", 6)
				f.addApp("app-2", "web-2", 4)
				p := testPolicy()
				s := schedule(p, byID("app-1", "app-2")...)
				j := NewMemJournal(Prior{})
				var mu sync.Mutex
				n := 0
				crashRec := &recorder{}
				out := runFake(t, context.Background(), f, s, crashRec, func(r *Runner) {
					r.Journal = j
					r.Observer = Observers{crashRec, j}
					r.Failpoint = func(name string) {
						mu.Lock()
						defer mu.Unlock()
						if name == fp {
							if n++; n == hit {
								panic(ErrCrash)
							}
						}
					}
				})
				if out.Result != ResultInterrupted || out.Reason != ReasonCrash {
					t.Fatalf("Run() = %s/%s, want %s/%s", out.Result, out.Reason, ResultInterrupted, ReasonCrash)
				}
				if kinds := crashRec.kinds(); slices.Contains(kinds, EventRunEnded) {
					t.Errorf("events after a crash include %s: %v", EventRunEnded, kinds)
				}
				submitsAtCrash := f.calls["RestartInstances"]

				prior := j.Prior()
				prior.Plans = nil // the journal of this test holds no plan: the fallback stands for it
				rec := &recorder{}
				out = resumeFake(t, f, s, prior, j, rec, func(r *Runner) { r.Observer = Observers{rec, j} })
				if out.Result != ResultSuccess {
					t.Fatalf("Resume() = %s/%s, want success; apps %+v", out.Result, out.Reason, out.Apps)
				}
				f.assertSafe(t, 2)
				restarted := map[string]int{}
				for _, r := range f.restarts {
					for _, id := range r.ids {
						restarted[id]++
					}
				}
				if len(restarted) != 10 {
					t.Errorf("instances restarted = %d, want 10", len(restarted))
				}
				reattached := 0
				for _, a := range out.Apps {
					reattached += len(a.Reattached)
				}
				wantReattach := fp != FailpointBeforeSubmit && fp != FailpointBetweenBatches
				if (reattached > 0) != wantReattach {
					t.Errorf("re-attached %d change orders, want re-attach %v (crash at %s, %d submits before)", reattached, wantReattach, fp, submitsAtCrash)
				}
			})
		}
	}
}

// TestSubmitWritesOneRowPerBatch: the journal row of a batch names exactly
// the instances submitted, and is written once per index — a journal that
// refuses a second BatchPlanned of an index (as the SQLite store does) never
// fails a retried submit.
func TestSubmitWritesOneRowPerBatch(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(f *fakeSAE, a *fakeApp)
		wantIndices []int
		wantRows    int
	}{
		{name: "a retryable refusal resubmits under the same row",
			setup: func(f *fakeSAE, a *fakeApp) {
				f.failWith("RestartInstances", saeErr(ClassRetryable, "RestartInstances", "System.Upgrading"),
					saeErr(ClassRetryable, "RestartInstances", "System.Upgrading"))
			},
			wantIndices: []int{1, 2}, wantRows: 2},
		{name: "a lock refusal with the same instances after the wait resubmits under the same row",
			setup: func(f *fakeSAE, a *fakeApp) {
				f.failWith("RestartInstances", saeErr(ClassLock, "RestartInstances", "Application.ChangerOrderRunning"))
			},
			wantIndices: []int{1, 2}, wantRows: 2},
		{name: "stale instances shrink the batch: it takes the next index and a new row",
			setup:       func(f *fakeSAE, a *fakeApp) { a.vanish = a.instances[0].ID },
			wantIndices: []int{2, 3}, wantRows: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			a := f.addApp("app-1", "web-1", 4)
			tt.setup(f, a)
			j := NewMemJournal(Prior{})
			out := runFake(t, context.Background(), f, schedule(testPolicy(), byID("app-1")...), nil, func(r *Runner) { r.Journal = j })
			got := appOutcome(t, out, "app-1")
			if got.Result != ResultSuccess {
				t.Fatalf("app = %s/%s (%s), want success", got.Result, got.Reason, got.Message)
			}
			var idx []int
			for _, b := range got.Batches {
				idx = append(idx, b.Index)
			}
			if !slices.Equal(idx, tt.wantIndices) {
				t.Errorf("batch indices = %v, want %v", idx, tt.wantIndices)
			}
			if j.Planned != tt.wantRows {
				t.Errorf("journal rows = %d, want %d", j.Planned, tt.wantRows)
			}
			for _, row := range j.Prior().Batches {
				if row.ChangeOrderID == "" {
					continue
				}
				if co := f.cos[row.ChangeOrderID]; !sameSet(co.targets, row.Instances) {
					t.Errorf("row %d names %v, its change order %s restarted %v", row.Index, row.Instances, co.id, co.targets)
				}
			}
			f.assertSafe(t, 2)
		})
	}
}

func TestResumeReportsARecordedSelectorFailureOnce(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 2)
	failed := AppOutcome{App: App{ID: "app-9", Region: "cn-hangzhou"}, Result: ResultFailed, Code: "InvalidApplication.NotFound"}
	prior := Prior{Started: runStart, Ended: []AppOutcome{failed}}
	rec := &recorder{}
	out := resumeFake(t, f, schedule(testPolicy(), byID("app-9", "app-1")...), prior, NewMemJournal(prior), rec)
	n := 0
	for _, a := range out.Apps {
		if a.App.ID == "app-9" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("outcomes of the failed selector = %d, want 1: %+v", n, out.Apps)
	}
	for _, e := range rec.kindsOf(EventAppEnded) {
		if e.App.ID == "app-9" {
			t.Errorf("%s reported again for app-9, which the journal has ended", EventAppEnded)
		}
	}
	if out.Result != ResultPartial {
		t.Errorf("Resume() = %s (%s), want partial (one app failed, one restarted); apps %+v", out.Result, out.Reason, out.Apps)
	}
}

func TestResumeCountsEndedFailuresInTheBudget(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 2)
	f.addApp("app-2", "web-2", 2)
	failed := AppOutcome{App: App{ID: "app-1", Name: "web-1"}, Result: ResultFailed, Reason: CodeChangeOrderFailed}
	prior := Prior{Started: runStart, Ended: []AppOutcome{failed}}
	out := resumeFake(t, f, schedule(testPolicy(), byID("app-1", "app-2")...), prior, NewMemJournal(prior), nil)
	if got := appOutcome(t, out, "app-2"); got.Result != ResultSkipped || got.Reason != ReasonFailureBudget {
		t.Errorf("app-2 = %s/%s, want %s/%s: max_failed_apps 0 counts the app that failed before the crash",
			got.Result, got.Reason, ResultSkipped, ReasonFailureBudget)
	}
	if n := f.restartCount(); n != 0 {
		t.Errorf("change orders = %d, want 0", n)
	}
}
