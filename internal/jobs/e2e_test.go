package jobs_test

import (
	"context"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/e2etest"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// End-to-end tests: the rollout engine drives the real SDK client
// (internal/sae) against the SAE emulator over HTTP on 127.0.0.1, all on one
// Scaled clock (e2etest.World). Every case asserts from the emulator's own
// record that no instance was restarted twice, no change order exceeded its
// batch size and no foreign change order was aborted.

func TestMain(m *testing.M) {
	// The SDK's default chain must never reach the ECS metadata address.
	os.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	os.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	os.Exit(m.Run())
}

// App IDs of the e2e worlds.
const (
	appA      = "5e2e0000-0000-4000-a000-00000000000a"
	appB      = "5e2e0000-0000-4000-a000-00000000000b"
	appC      = "5e2e0000-0000-4000-a000-00000000000c"
	appAbsent = "5e2e0000-0000-4000-a000-0000000000ff"
	nsE2E     = "cn-hangzhou:e2e"
)

// e2ePolicy is the policy of most cases: batches of size, 10 s pauses,
// lock_wait 30 min, batch_timeout 10 min, window 2 h, stop at the first failure.
func e2ePolicy(size int) jobs.Policy {
	p := jobs.DefaultPolicy()
	p.BatchSize = jobs.Quantity{Value: size}
	p.Pause = 10 * time.Second
	p.BatchTimeout = 10 * time.Minute
	return p
}

func e2eSchedule(p jobs.Policy, appIDs ...string) jobs.Schedule {
	s := jobs.Schedule{Name: "e2e", Region: e2etest.Region, Policy: p}
	for _, id := range appIDs {
		s.Apps = append(s.Apps, jobs.AppSelector{AppID: id})
	}
	return s
}

// spec is an app of n instances whose restart batches take d.
func spec(id string, n int, d time.Duration) emulator.AppSpec {
	return emulator.AppSpec{AppID: id, AppName: "app-" + id[len(id)-1:], NamespaceID: nsE2E, Instances: n, RestartTime: d}
}

func findApp(t *testing.T, out jobs.RunOutcome, id string) jobs.AppOutcome {
	t.Helper()
	for _, a := range out.Apps {
		if a.App.ID == id {
			return a
		}
	}
	t.Fatalf("no outcome for app %s in %+v", id, out.Apps)
	return jobs.AppOutcome{}
}

// restartedIDs returns the original instance IDs the emulator restarted at least once, sorted.
func restartedIDs(w *e2etest.World, appID string) []string {
	var ids []string
	for id, n := range w.Server.Restarts(appID) {
		if n > 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	sort.Strings(out)
	return out
}

// e2eCase is one end-to-end scenario: a world, a schedule, and what the run
// and the emulator must show.
type e2eCase struct {
	name     string
	factor   float64 // 0: e2etest.DefaultFactor
	emu      emulator.Config
	policy   jobs.Policy
	apps     []string // the schedule's app IDs, in order
	batch    int      // the largest change order allowed (0: policy.BatchSize.Value)
	runner   func(r *jobs.Runner, cancel context.CancelFunc)
	wantRun  jobs.Result
	wantApps map[string]jobs.Result
	check    func(t *testing.T, w *e2etest.World, out jobs.RunOutcome)
}

// modes are the emulator's business-error shapes: the identifier in Code,
// or "Code":"400" beside it in ErrorCode; and answered with its 4xx status
// or as a 200 with Success false.
var modes = []struct {
	name   string
	code   emulator.ErrorCodeMode
	status emulator.BusinessStatusMode
}{
	{"code in Code", emulator.CodeInCode, emulator.HTTP4xx},
	{"code in ErrorCode", emulator.CodeInErrorCode, emulator.HTTP4xx},
	{"code in ErrorCode, HTTP 200", emulator.CodeInErrorCode, emulator.HTTP200},
}

func runE2E(t *testing.T, tc e2eCase) {
	t.Parallel()
	w := e2etest.Start(t, e2etest.Config{Factor: tc.factor, Emulator: tc.emu})
	rec := &e2etest.Recorder{}
	r := w.Runner(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if tc.runner != nil {
		tc.runner(r, cancel)
	}
	out := r.Run(ctx, e2eSchedule(tc.policy, tc.apps...), w.Clock.Now())
	if out.Result != tc.wantRun {
		t.Errorf("Run() result = %s (reason %q), want %s; apps: %+v", out.Result, out.Reason, tc.wantRun, out.Apps)
	}
	for id, want := range tc.wantApps {
		if a := findApp(t, out, id); a.Result != want {
			t.Errorf("app %s result = %s (reason %q, code %q, message %q), want %s", id, a.Result, a.Reason, a.Code, a.Message, want)
		}
	}
	batch := tc.batch
	if batch == 0 {
		batch = tc.policy.BatchSize.Value
	}
	for _, as := range tc.emu.Apps {
		w.CheckInvariants(t, batch, as.AppID)
	}
	// What the engine says it restarted, the emulator restarted.
	for _, a := range out.Apps {
		done := restartedIDs(w, a.App.ID)
		for _, id := range a.Restarted {
			if _, ok := slices.BinarySearch(done, id); !ok {
				t.Errorf("app %s: outcome lists %s as restarted, the emulator never restarted it", a.App.ID, id)
			}
		}
	}
	if tc.check != nil {
		tc.check(t, w, out)
	}
}

func TestE2ELock(t *testing.T) {
	for _, m := range modes {
		cases := []e2eCase{
			{
				name: "deploy holds the lock at start, then releases it",
				emu: emulator.Config{Apps: []emulator.AppSpec{
					withDeploys(spec(appA, 4, 30*time.Second), emulator.ForeignChangeOrder{Duration: 2 * time.Minute}),
				}},
				policy: e2ePolicy(2), apps: []string{appA},
				wantRun: jobs.ResultSuccess, wantApps: map[string]jobs.Result{appA: jobs.ResultSuccess},
				check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
					deploy := foreign(t, w, appA)
					for _, co := range w.RestartCOs(appA) {
						if co.Created.Before(deploy.Ended) {
							t.Errorf("restart change order %s created %s, before the deploy ended %s", co.ID, co.Created, deploy.Ended)
						}
					}
					if got := len(restartedIDs(w, appA)); got != 4 {
						t.Errorf("restarted instances = %d, want 4", got)
					}
				},
			},
			{
				name: "deploy takes the lock between batches: RestartInstances refused, then accepted",
				emu: emulator.Config{Apps: []emulator.AppSpec{
					withDeploys(spec(appA, 4, 30*time.Second), emulator.ForeignChangeOrder{After: 35 * time.Second, Duration: time.Minute}),
				}},
				policy: withPause(e2ePolicy(2), 30*time.Second), apps: []string{appA},
				wantRun: jobs.ResultSuccess, wantApps: map[string]jobs.Result{appA: jobs.ResultSuccess},
				check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
					if got := w.CountCode("Application.ChangerOrderRunning"); got < 1 {
						t.Errorf("Application.ChangerOrderRunning answers = %d, want >= 1", got)
					}
					deploy := foreign(t, w, appA)
					cos := w.RestartCOs(appA)
					if len(cos) != 2 || cos[1].Created.Before(deploy.Ended) {
						t.Errorf("restart change orders = %+v, want 2, the second after the deploy ended %s", cos, deploy.Ended)
					}
				},
			},
			{
				name: "deploy holds the lock past lock_wait: skipped lock_busy",
				emu: emulator.Config{Apps: []emulator.AppSpec{
					withDeploys(spec(appA, 4, 30*time.Second), emulator.ForeignChangeOrder{Duration: 24 * time.Hour}),
				}},
				policy: withLockWait(e2ePolicy(2), 2*time.Minute), apps: []string{appA},
				wantRun: jobs.ResultSkipped, wantApps: map[string]jobs.Result{appA: jobs.ResultSkipped},
				check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
					if out.Reason != jobs.ReasonLockBusy {
						t.Errorf("Run() reason = %q, want %q", out.Reason, jobs.ReasonLockBusy)
					}
					if cos := w.RestartCOs(appA); len(cos) != 0 {
						t.Errorf("restart change orders = %d, want 0", len(cos))
					}
					if d := foreign(t, w, appA); !d.Ended.IsZero() {
						t.Errorf("deploy ended at %s, want still running", d.Ended)
					}
				},
			},
		}
		for _, tc := range cases {
			tc.emu.ErrorCodeIn, tc.emu.BusinessErrorStatus = m.code, m.status
			t.Run(m.name+"/"+tc.name, func(t *testing.T) { runE2E(t, tc) })
		}
	}
}

func TestE2EFatalAndSkips(t *testing.T) {
	for _, m := range modes {
		cases := []e2eCase{
			{
				name:   "app not found: failed with SAE's code",
				emu:    emulator.Config{Apps: []emulator.AppSpec{spec(appA, 2, 30*time.Second)}},
				policy: e2ePolicy(1), apps: []string{appAbsent},
				wantRun: jobs.ResultFailed, wantApps: map[string]jobs.Result{appAbsent: jobs.ResultFailed},
				check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
					a := findApp(t, out, appAbsent)
					if a.Code != "InvalidApplication.NotFound" || out.Reason != "InvalidApplication.NotFound" {
						t.Errorf("app code = %q, run reason = %q, want InvalidApplication.NotFound for both", a.Code, out.Reason)
					}
					if got := w.Server.Calls("RestartInstances"); got != 0 {
						t.Errorf("RestartInstances calls = %d, want 0", got)
					}
				},
			},
			{
				name:   "app not deployed: skipped not_deployed",
				emu:    emulator.Config{Apps: []emulator.AppSpec{{AppID: appA, NamespaceID: nsE2E, NotDeployed: true}}},
				policy: e2ePolicy(1), apps: []string{appA},
				wantRun: jobs.ResultSkipped, wantApps: map[string]jobs.Result{appA: jobs.ResultSkipped},
				check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
					if a := findApp(t, out, appA); a.Reason != jobs.ReasonNotDeployed {
						t.Errorf("app reason = %q (%s), want %q", a.Reason, a.Message, jobs.ReasonNotDeployed)
					}
				},
			},
			{
				name: "first change order fails: the app fails, no further batch",
				emu: emulator.Config{Apps: []emulator.AppSpec{
					withFaults(spec(appA, 4, 30*time.Second), emulator.Fault{Kind: emulator.FaultCOFail}),
				}},
				policy: e2ePolicy(2), apps: []string{appA},
				wantRun: jobs.ResultFailed, wantApps: map[string]jobs.Result{appA: jobs.ResultFailed},
				check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
					a := findApp(t, out, appA)
					if a.Reason != jobs.CodeChangeOrderFailed || len(a.Restarted) != 0 || len(a.NotRestarted) != 4 {
						t.Errorf("app = %s restarted %v not restarted %v, want reason %s, 0 restarted, 4 not",
							a.Reason, a.Restarted, a.NotRestarted, jobs.CodeChangeOrderFailed)
					}
					if cos := w.RestartCOs(appA); len(cos) != 1 || cos[0].Status != 3 {
						t.Errorf("restart change orders = %+v, want one with status 3", cos)
					}
				},
			},
		}
		for _, tc := range cases {
			tc.emu.ErrorCodeIn, tc.emu.BusinessErrorStatus = m.code, m.status
			t.Run(m.name+"/"+tc.name, func(t *testing.T) { runE2E(t, tc) })
		}
	}
}

func TestE2EStuckChangeOrders(t *testing.T) {
	stuck := func(kind emulator.FaultKind) emulator.Config {
		return emulator.Config{Apps: []emulator.AppSpec{withFaults(spec(appA, 4, 30*time.Second), emulator.Fault{Kind: kind})}}
	}
	short := func(p jobs.Policy, onStuck jobs.StuckPolicy) jobs.Policy {
		p.BatchTimeout, p.OnStuck = 3*time.Minute, onStuck
		return p
	}
	cases := []e2eCase{
		{
			name: "SubStatus 1 with on_stuck abort: our change order is aborted",
			emu:  stuck(emulator.FaultCOStuckSubStatus), policy: short(e2ePolicy(2), jobs.StuckAbort), apps: []string{appA},
			wantRun: jobs.ResultFailed, wantApps: map[string]jobs.Result{appA: jobs.ResultFailed},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				a := findApp(t, out, appA)
				cos := w.RestartCOs(appA)
				if a.Reason != jobs.CodeStuck || !strings.Contains(a.Message, "aborted") {
					t.Errorf("app reason = %q message %q, want %q saying aborted", a.Reason, a.Message, jobs.CodeStuck)
				}
				if len(cos) != 1 || !cos[0].Aborted || cos[0].Status != 6 {
					t.Errorf("restart change orders = %+v, want one, aborted (status 6)", cos)
				}
			},
		},
		{
			name: "SubStatus 1 with on_stuck leave: our change order is left holding the lock",
			emu:  stuck(emulator.FaultCOStuckSubStatus), policy: short(e2ePolicy(2), jobs.StuckLeave), apps: []string{appA},
			wantRun: jobs.ResultFailed, wantApps: map[string]jobs.Result{appA: jobs.ResultFailed},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				a := findApp(t, out, appA)
				cos := w.RestartCOs(appA)
				if a.Reason != jobs.CodeStuck || !strings.Contains(a.Message, "left") {
					t.Errorf("app reason = %q message %q, want %q saying left", a.Reason, a.Message, jobs.CodeStuck)
				}
				if len(cos) != 1 || cos[0].Aborted || cos[0].SubStatus != 1 || !cos[0].Ended.IsZero() {
					t.Errorf("restart change orders = %+v, want one, not aborted, SubStatus 1, not ended", cos)
				}
				if got := w.Server.Calls("AbortChangeOrder"); got != 0 {
					t.Errorf("AbortChangeOrder calls = %d, want 0", got)
				}
			},
		},
		{
			name: "status 8 past batch_timeout: needs_confirmation, our change order aborted",
			emu:  stuck(emulator.FaultCOWaitConfirm), policy: short(e2ePolicy(2), jobs.StuckAbort), apps: []string{appA},
			wantRun: jobs.ResultNeedsConfirmation, wantApps: map[string]jobs.Result{appA: jobs.ResultNeedsConfirmation},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				a := findApp(t, out, appA)
				cos := w.RestartCOs(appA)
				if len(cos) != 1 || !cos[0].Aborted {
					t.Errorf("restart change orders = %+v, want one, aborted", cos)
				}
				if len(a.Restarted) != 0 || len(restartedIDs(w, appA)) != 0 {
					t.Errorf("restarted = %v (emulator %v), want none: status 8 came before any pod", a.Restarted, restartedIDs(w, appA))
				}
				// It waited for the human up to batch_timeout, not less.
				if b := a.Batches; len(b) != 1 || b[0].Ended.Sub(b[0].Submitted) < 3*time.Minute-5*time.Second {
					t.Errorf("batches = %+v, want one lasting about batch_timeout 3m", b)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runE2E(t, tc) })
	}
}

func TestE2ETransientErrors(t *testing.T) {
	cases := []e2eCase{
		{
			name: "throttling storm: Throttling.User answers, backoff, the run succeeds",
			// The emulator allows 3 calls a minute, the client's bucket 30:
			// two apps at once hit the quota again and again.
			emu: emulator.Config{QuotaPerMinute: 3, Apps: []emulator.AppSpec{
				spec(appA, 4, 30*time.Second), spec(appB, 4, 30*time.Second)}},
			policy: withApps(e2ePolicy(2), 2, 0), apps: []string{appA, appB},
			wantRun: jobs.ResultSuccess, wantApps: map[string]jobs.Result{appA: jobs.ResultSuccess, appB: jobs.ResultSuccess},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				// Backing off (the bucket pauses on x-acs-retry-after, the engine
				// waits 3 s and more) keeps the rejected calls few: hammering
				// would be rejected many times for each call accepted.
				throttled, calls := w.CountCode("Throttling.User"), w.TotalCalls()
				t.Logf("Throttling.User answers: %d of %d calls", throttled, calls)
				if throttled < 1 || throttled > calls-throttled {
					t.Errorf("Throttling.User answers = %d of %d calls, want between 1 and the %d accepted", throttled, calls, calls-throttled)
				}
				if got := len(restartedIDs(w, appA)) + len(restartedIDs(w, appB)); got != 8 {
					t.Errorf("restarted instances = %d, want 8", got)
				}
			},
		},
		{
			name: "System.Upgrading burst on every action: retried, the run succeeds",
			emu: emulator.Config{Apps: []emulator.AppSpec{
				withFaults(spec(appA, 4, 30*time.Second),
					emulator.Fault{Kind: emulator.FaultCode, Code: "System.Upgrading", Count: 3},
					emulator.Fault{Kind: emulator.FaultCode, Code: "System.Upgrading", Action: "RestartInstances", Count: 2},
					emulator.Fault{Kind: emulator.FaultCode, Code: "System.Upgrading", Action: "DescribeChangeOrder", Count: 2}),
			}},
			policy: e2ePolicy(2), apps: []string{appA},
			wantRun: jobs.ResultSuccess, wantApps: map[string]jobs.Result{appA: jobs.ResultSuccess},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				if got := w.CountCode("System.Upgrading"); got != 7 {
					t.Errorf("System.Upgrading answers = %d, want 7", got)
				}
				if cos := w.RestartCOs(appA); len(cos) != 2 {
					t.Errorf("restart change orders = %d, want 2", len(cos))
				}
			},
		},
		{
			name: "ambiguous submit (accepted, then 503): exactly one change order for the batch",
			emu: emulator.Config{Apps: []emulator.AppSpec{
				withFaults(spec(appA, 4, 30*time.Second), emulator.Fault{Kind: emulator.FaultAcceptThen5xx, Action: "RestartInstances", Count: 1}),
			}},
			policy: e2ePolicy(2), apps: []string{appA},
			wantRun: jobs.ResultSuccess, wantApps: map[string]jobs.Result{appA: jobs.ResultSuccess},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				cos := w.RestartCOs(appA)
				a := findApp(t, out, appA)
				if len(cos) != 2 || !slices.Equal(a.ChangeOrders, []string{cos[0].ID, cos[1].ID}) {
					t.Errorf("restart change orders = %+v, outcome %v, want the same 2", cos, a.ChangeOrders)
				}
				if got := w.Server.Calls("RestartInstances"); got != 2 {
					t.Errorf("RestartInstances calls = %d, want 2 (no resubmit)", got)
				}
			},
		},
		{
			name:   "instance IDs replaced by the restart: each original restarted once",
			emu:    emulator.Config{ReplaceInstanceIDs: true, Apps: []emulator.AppSpec{spec(appA, 6, 30*time.Second)}},
			policy: e2ePolicy(2), apps: []string{appA},
			wantRun: jobs.ResultSuccess, wantApps: map[string]jobs.Result{appA: jobs.ResultSuccess},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				a := findApp(t, out, appA)
				if got, want := sorted(a.Restarted), restartedIDs(w, appA); len(got) != 6 || !slices.Equal(got, want) {
					t.Errorf("outcome restarted = %v, emulator restarted = %v, want the same 6", got, want)
				}
				for _, in := range w.Server.Instances(appA) {
					if in.ID == in.OriginalID {
						t.Errorf("instance %s kept its ID, want replaced", in.ID)
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runE2E(t, tc) })
	}
}

func TestE2EBoundsAndBudgets(t *testing.T) {
	cases := []e2eCase{
		{
			name: "window ends mid-run: deadline_exceeded, the rest listed as not restarted",
			// Batches of 60 s with 30 s pauses: batch 2 starts at about 90 s,
			// batch 3 would start at about 180 s, past the 150 s window.
			factor: 300,
			emu:    emulator.Config{Apps: []emulator.AppSpec{spec(appA, 8, time.Minute)}},
			policy: withWindow(withPause(e2ePolicy(2), 30*time.Second), 150*time.Second), apps: []string{appA},
			wantRun: jobs.ResultDeadlineExceeded, wantApps: map[string]jobs.Result{appA: jobs.ResultDeadlineExceeded},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				a := findApp(t, out, appA)
				done := restartedIDs(w, appA)
				if len(a.Restarted) != 4 || len(a.NotRestarted) != 4 || len(done) != 4 {
					t.Errorf("restarted %v, not restarted %v, emulator restarted %v: want 4, 4, 4", a.Restarted, a.NotRestarted, done)
				}
				for _, id := range a.NotRestarted {
					if _, ok := slices.BinarySearch(done, id); ok {
						t.Errorf("%s listed as not restarted, the emulator restarted it", id)
					}
				}
			},
		},
		{
			name:   "cancel mid-batch: the change order is watched to its end, outcome cancelled",
			emu:    emulator.Config{Apps: []emulator.AppSpec{spec(appA, 4, time.Minute)}},
			policy: e2ePolicy(2), apps: []string{appA},
			runner: func(r *jobs.Runner, cancel context.CancelFunc) {
				rec := r.Observer.(*e2etest.Recorder)
				var once sync.Once
				rec.OnEvent = func(e jobs.Event) {
					if e.Kind == jobs.EventBatchSubmitted {
						once.Do(cancel)
					}
				}
			},
			wantRun: jobs.ResultCancelled, wantApps: map[string]jobs.Result{appA: jobs.ResultCancelled},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				a := findApp(t, out, appA)
				cos := w.RestartCOs(appA)
				if len(cos) != 1 || cos[0].Aborted || cos[0].Status != 2 {
					t.Fatalf("restart change orders = %+v, want one, succeeded, not aborted", cos)
				}
				if out.Ended.Before(cos[0].Ended) {
					t.Errorf("run ended %s, before its change order ended %s", out.Ended, cos[0].Ended)
				}
				if len(a.Restarted) != 2 || len(a.NotRestarted) != 2 {
					t.Errorf("restarted %v, not restarted %v, want 2 and 2", a.Restarted, a.NotRestarted)
				}
			},
		},
		{
			name:   "min_ready 75% of 4 shrinks batches of 2 to 1",
			emu:    emulator.Config{Apps: []emulator.AppSpec{spec(appA, 4, 30*time.Second)}},
			policy: withMinReady(e2ePolicy(2), jobs.Quantity{Value: 75, Percent: true}), apps: []string{appA},
			batch:   1,
			wantRun: jobs.ResultSuccess, wantApps: map[string]jobs.Result{appA: jobs.ResultSuccess},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				if cos := w.RestartCOs(appA); len(cos) != 4 {
					t.Errorf("restart change orders = %d, want 4 of one instance", len(cos))
				}
				if got := len(restartedIDs(w, appA)); got != 4 {
					t.Errorf("restarted instances = %d, want 4", got)
				}
			},
		},
		{
			name: "two apps at once, a failure budget of 0 apps: the third is not started",
			emu: emulator.Config{Apps: []emulator.AppSpec{
				withFaults(spec(appA, 4, 30*time.Second), emulator.Fault{Kind: emulator.FaultCOFail}),
				spec(appB, 4, 30*time.Second),
				spec(appC, 4, 30*time.Second),
			}},
			policy: withApps(e2ePolicy(2), 2, 0), apps: []string{appA, appB, appC},
			wantRun:  jobs.ResultPartial,
			wantApps: map[string]jobs.Result{appA: jobs.ResultFailed, appB: jobs.ResultSuccess, appC: jobs.ResultSkipped},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				if c := findApp(t, out, appC); c.Reason != jobs.ReasonFailureBudget {
					t.Errorf("app C reason = %q, want %q", c.Reason, jobs.ReasonFailureBudget)
				}
				if n := len(w.RestartCOs(appC)); n != 0 {
					t.Errorf("app C change orders = %d, want 0", n)
				}
				a, b := w.RestartCOs(appA), w.RestartCOs(appB)
				if len(a) != 1 || len(b) != 2 || !overlap(a[0], b[0]) {
					t.Errorf("change orders A %+v, B %+v: want A's one running alongside B's first", a, b)
				}
			},
		},
		{
			name: "max_failed_batches 1: a failed batch within budget, the app ends partial",
			emu: emulator.Config{Apps: []emulator.AppSpec{
				withFaults(spec(appA, 6, 30*time.Second), emulator.Fault{Kind: emulator.FaultCOFail, Count: 1}),
			}},
			policy: withFailedBatches(e2ePolicy(2), 1), apps: []string{appA},
			wantRun: jobs.ResultPartial, wantApps: map[string]jobs.Result{appA: jobs.ResultPartial},
			check: func(t *testing.T, w *e2etest.World, out jobs.RunOutcome) {
				a := findApp(t, out, appA)
				if len(a.Restarted) != 4 || len(a.NotRestarted) != 2 || a.Reason != jobs.CodeChangeOrderFailed {
					t.Errorf("restarted %v, not restarted %v, reason %q: want 4, 2, %s", a.Restarted, a.NotRestarted, a.Reason, jobs.CodeChangeOrderFailed)
				}
				if cos := w.RestartCOs(appA); len(cos) != 3 || cos[0].Status != 3 || cos[1].Status != 2 || cos[2].Status != 2 {
					t.Errorf("restart change orders = %+v, want 3: failed, succeeded, succeeded", cos)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runE2E(t, tc) })
	}
}

// foreign returns the app's one foreign change order.
func foreign(t *testing.T, w *e2etest.World, appID string) emulator.ChangeOrderRecord {
	t.Helper()
	var out []emulator.ChangeOrderRecord
	for _, co := range w.Server.ChangeOrders(appID) {
		if co.Foreign {
			out = append(out, co)
		}
	}
	if len(out) != 1 {
		t.Fatalf("foreign change orders of %s = %+v, want 1", appID, out)
	}
	return out[0]
}

func overlap(a, b emulator.ChangeOrderRecord) bool {
	end := func(c emulator.ChangeOrderRecord) time.Time {
		if c.Ended.IsZero() {
			return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		return c.Ended
	}
	return a.Created.Before(end(b)) && b.Created.Before(end(a))
}

func withDeploys(s emulator.AppSpec, d ...emulator.ForeignChangeOrder) emulator.AppSpec {
	s.Deploys = d
	return s
}

func withFaults(s emulator.AppSpec, f ...emulator.Fault) emulator.AppSpec {
	s.Faults = f
	return s
}

func withPause(p jobs.Policy, d time.Duration) jobs.Policy { p.Pause = d; return p }

func withLockWait(p jobs.Policy, d time.Duration) jobs.Policy { p.LockWait = d; return p }

func withWindow(p jobs.Policy, d time.Duration) jobs.Policy { p.Window = d; return p }

func withMinReady(p jobs.Policy, q jobs.Quantity) jobs.Policy { p.MinReady = q; return p }

func withFailedBatches(p jobs.Policy, n int) jobs.Policy { p.MaxFailedBatches = n; return p }

func withApps(p jobs.Policy, concurrency, maxFailed int) jobs.Policy {
	p.AppConcurrency, p.MaxFailedApps = concurrency, maxFailed
	return p
}

func TestE2EPlanIsReadOnly(t *testing.T) {
	t.Parallel()
	w := e2etest.Start(t, e2etest.Config{Emulator: emulator.Config{Apps: []emulator.AppSpec{
		spec(appA, 5, 30*time.Second),
		{AppID: appB, NamespaceID: nsE2E, NotDeployed: true},
	}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plan, err := w.Runner(nil).Plan(ctx, e2eSchedule(e2ePolicy(2), appA, appB, appAbsent), w.Clock.Now())
	if err != nil {
		t.Fatalf("Plan() error = %v", err)
	}
	byID := map[string]jobs.AppPlan{}
	for _, p := range plan.Apps {
		byID[p.App.ID] = p
	}
	if a := byID[appA]; a.Result != "" || len(a.Batches) != 3 || len(a.Instances) != 5 {
		t.Errorf("plan of A = %+v, want 5 instances in 3 batches", a)
	}
	if b := byID[appB]; b.Result != jobs.ResultSkipped || b.Reason != jobs.ReasonNotDeployed {
		t.Errorf("plan of B = %s/%s, want %s/%s", b.Result, b.Reason, jobs.ResultSkipped, jobs.ReasonNotDeployed)
	}
	if c := byID[appAbsent]; c.Result != jobs.ResultFailed || c.Code != "InvalidApplication.NotFound" {
		t.Errorf("plan of the absent app = %s/%s, want %s/InvalidApplication.NotFound", c.Result, c.Code, jobs.ResultFailed)
	}
	for _, action := range []string{"RestartInstances", "RestartApplication", "AbortChangeOrder"} {
		if n := w.Server.Calls(action); n != 0 {
			t.Errorf("%s calls = %d, want 0: a plan makes no mutating call", action, n)
		}
	}
}

// TestE2EDurationsCarryOverRuns: with a Durations memory, the second night's
// first batch is polled near the first night's durations instead of being
// probed from scratch, so it needs fewer DescribeChangeOrder calls.
func TestE2EDurationsCarryOverRuns(t *testing.T) {
	t.Parallel()
	app := spec(appA, 2, 75*time.Second)
	w := e2etest.Start(t, e2etest.Config{Emulator: emulator.Config{Apps: []emulator.AppSpec{app}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := w.Runner(nil)
	r.Durations = jobs.NewDurations()
	polls := func() int {
		before := w.Server.Calls("DescribeChangeOrder")
		// One batch holding both instances: only a first batch is polled without history.
		out := r.Run(ctx, e2eSchedule(e2ePolicy(2), appA), w.Clock.Now())
		if out.Result != jobs.ResultSuccess {
			t.Fatalf("run = %s (%s), want success", out.Result, out.Reason)
		}
		return w.Server.Calls("DescribeChangeOrder") - before
	}
	cold := polls()
	if got := r.Durations.Of(appA); len(got) != 1 {
		t.Fatalf("Durations.Of(app) after one batch = %v, want one duration", got)
	}
	warm := polls()
	if warm != 1 || cold <= warm {
		t.Errorf("DescribeChangeOrder calls: cold run %d, warm run %d; want the warm run to poll once, fewer than cold", cold, warm)
	}
}

func TestDurationsKeepsTheLatest(t *testing.T) {
	tests := []struct {
		name string
		add  []time.Duration
		want int // remembered
		last time.Duration
	}{
		{name: "nothing added remembers nothing", want: 0},
		{name: "non-positive durations are ignored", add: []time.Duration{0, -time.Second}, want: 0},
		{name: "a few are all kept", add: []time.Duration{time.Second, 2 * time.Second}, want: 2, last: 2 * time.Second},
		{name: "only the latest ten are kept", add: func() []time.Duration {
			var d []time.Duration
			for i := 1; i <= 15; i++ {
				d = append(d, time.Duration(i)*time.Second)
			}
			return d
		}(), want: 10, last: 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := jobs.NewDurations()
			for _, v := range tt.add {
				d.Add("app", v)
			}
			got := d.Of("app")
			if len(got) != tt.want {
				t.Fatalf("Of() = %v, want %d durations", got, tt.want)
			}
			if tt.want > 0 && got[len(got)-1] != tt.last {
				t.Errorf("latest = %v, want %v", got[len(got)-1], tt.last)
			}
			if len(got) > 0 {
				got[0] = time.Hour // a copy: the memory must not change
				if d.Of("app")[0] == time.Hour {
					t.Errorf("Of() returned the memory itself, not a copy")
				}
			}
			var nilMem *jobs.Durations
			nilMem.Add("app", time.Second)
			if got := nilMem.Of("app"); got != nil {
				t.Errorf("nil Durations Of() = %v, want nil", got)
			}
		})
	}
}
