package jobs

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func appOutcome(t *testing.T, out RunOutcome, id string) AppOutcome {
	t.Helper()
	for _, a := range out.Apps {
		if a.App.ID == id {
			return a
		}
	}
	t.Fatalf("no outcome for app %s in %+v", id, out.Apps)
	return AppOutcome{}
}

func TestRunLock(t *testing.T) {
	tests := []struct {
		name        string
		hold        time.Duration // someone else's change order, from the start
		lockWait    time.Duration
		submitLock  bool // RestartInstances refuses once with the lock
		wantApp     Result
		wantReason  string
		wantRestart int
	}{
		{name: "lock held by a deploy, then free", hold: 3 * time.Minute, lockWait: 30 * time.Minute,
			wantApp: ResultSuccess, wantRestart: 2},
		{name: "lock held past lock_wait", hold: 2 * time.Hour, lockWait: 5 * time.Minute,
			wantApp: ResultSkipped, wantReason: ReasonLockBusy},
		{name: "lock_wait 0 does not wait", hold: time.Minute, lockWait: 0,
			wantApp: ResultSkipped, wantReason: ReasonLockBusy},
		{name: "submit refused with the lock, then free", submitLock: true, lockWait: 30 * time.Minute,
			wantApp: ResultSuccess, wantRestart: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.addApp("app-1", "web-1", 4)
			var holder string
			if tt.hold > 0 {
				holder = f.holdLock("app-1", tt.hold)
			}
			if tt.submitLock {
				f.failWith("RestartInstances", saeErr(ClassLock, "RestartInstances", "Application.ChangerOrderRunning"))
			}
			p := testPolicy()
			p.LockWait = tt.lockWait
			rec := &recorder{}
			out := runFake(t, context.Background(), f, schedule(p, byID("app-1")...), rec)
			a := appOutcome(t, out, "app-1")
			if a.Result != tt.wantApp || a.Reason != tt.wantReason {
				t.Errorf("app = %s/%s (%s), want %s/%s", a.Result, a.Reason, a.Message, tt.wantApp, tt.wantReason)
			}
			if got := f.restartCount(); got != tt.wantRestart {
				t.Errorf("change orders = %d, want %d", got, tt.wantRestart)
			}
			kinds := rec.kinds()
			if !slices.Contains(kinds, EventLockWaitStarted) || !slices.Contains(kinds, EventLockWaitEnded) {
				t.Errorf("events = %v, want lock_wait_started and lock_wait_ended", kinds)
			}
			if holder != "" && slices.Contains(f.aborted, holder) {
				t.Errorf("aborted %s, someone else's change order", holder)
			}
			f.assertSafe(t, 2)
		})
	}
}

func TestRunLockBusyAfterProgressIsPartial(t *testing.T) {
	f := newFake()
	a := f.addApp("app-1", "web-1", 4)
	// A deploy grabs the app while our first change order runs; it outlasts lock_wait.
	a.restartTime = func(n int) time.Duration {
		if n == 1 {
			f.cos["deploy-x"] = &fakeCO{id: "deploy-x", app: "app-1", created: f.clk.Now(), ends: f.clk.Now().Add(3 * time.Hour), final: COSucceeded}
		}
		return 60 * time.Second
	}
	p := testPolicy()
	p.LockWait = 10 * time.Minute
	out := runFake(t, context.Background(), f, schedule(p, byID("app-1")...), nil)
	got := appOutcome(t, out, "app-1")
	if got.Result != ResultPartial || got.Reason != ReasonLockBusy {
		t.Errorf("app = %s/%s (%s), want partial/lock_busy", got.Result, got.Reason, got.Message)
	}
	if len(got.Restarted) != 2 || len(got.NotRestarted) != 2 {
		t.Errorf("restarted %v, not restarted %v, want 2 and 2", got.Restarted, got.NotRestarted)
	}
	if slices.Contains(f.aborted, "deploy-x") {
		t.Error("aborted the deploy's change order")
	}
	f.assertSafe(t, 2)
}

func TestRunChangeOrderEnds(t *testing.T) {
	tests := []struct {
		name        string
		status, sub int
		onStuck     StuckPolicy
		maxFailed   int
		wantApp     Result
		wantReason  string
		wantAborted bool
		wantCOs     int
	}{
		{name: "a failed change order stops the app", status: COFailed, wantApp: ResultFailed,
			wantReason: CodeChangeOrderFailed, wantCOs: 1},
		{name: "a failed change order within the budget goes on", status: COFailed, maxFailed: 1,
			wantApp: ResultPartial, wantReason: CodeChangeOrderFailed, wantCOs: 2},
		{name: "SubStatus abnormal: our change order is aborted", status: CORunning, sub: 1,
			wantApp: ResultFailed, wantReason: CodeStuck, wantAborted: true, wantCOs: 1},
		{name: "SubStatus abnormal with on_stuck leave: left", status: CORunning, sub: 1, onStuck: StuckLeave,
			wantApp: ResultFailed, wantReason: CodeStuck, wantCOs: 1},
		{name: "status 8 past batch_timeout needs confirmation, aborted", status: COWaitConfirm,
			wantApp: ResultNeedsConfirmation, wantReason: CodeStuck, wantAborted: true, wantCOs: 1},
		{name: "status 11 with on_stuck leave needs confirmation, left", status: COWaitApproval, onStuck: StuckLeave,
			wantApp: ResultNeedsConfirmation, wantReason: CodeStuck, wantCOs: 1},
		{name: "running past batch_timeout is left to finish", status: CORunning,
			wantApp: ResultFailed, wantReason: CodeBatchTimeout, wantCOs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			a := f.addApp("app-1", "web-1", 4)
			a.end = func(n int) (int, int) {
				if n == 1 {
					return tt.status, tt.sub
				}
				return COSucceeded, 0
			}
			p := testPolicy()
			p.MaxFailedBatches = tt.maxFailed
			if tt.onStuck != "" {
				p.OnStuck = tt.onStuck
			}
			out := runFake(t, context.Background(), f, schedule(p, byID("app-1")...), nil)
			got := appOutcome(t, out, "app-1")
			if got.Result != tt.wantApp || got.Reason != tt.wantReason {
				t.Errorf("app = %s/%s (%s), want %s/%s", got.Result, got.Reason, got.Message, tt.wantApp, tt.wantReason)
			}
			if aborted := len(f.aborted) > 0; aborted != tt.wantAborted {
				t.Errorf("aborted = %v, want %v (message %q)", f.aborted, tt.wantAborted, got.Message)
			}
			if n := f.restartCount(); n != tt.wantCOs {
				t.Errorf("change orders = %d, want %d", n, tt.wantCOs)
			}
			if got.Batches[0].ChangeOrderID == "" || got.Batches[0].Result == ResultSuccess {
				t.Errorf("batch 1 = %+v, want a failed batch with its change order", got.Batches[0])
			}
			f.assertSafe(t, 2)
		})
	}
}

func TestRunRetryableBurst(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 4)
	for range 3 {
		f.failWith("RestartInstances", saeErr(ClassRetryable, "RestartInstances", "System.Upgrading"))
	}
	for range 4 {
		f.failWith("DescribeChangeOrder", saeErr(ClassRetryable, "DescribeChangeOrder", "Throttling.User"))
	}
	f.failWith("ListInstances", saeErr(ClassRetryable, "ListInstances", "ServiceUnavailable"))
	out := runFake(t, context.Background(), f, schedule(testPolicy(), byID("app-1")...), nil)
	if got := appOutcome(t, out, "app-1"); got.Result != ResultSuccess || len(got.Restarted) != 4 {
		t.Errorf("app = %s (%s), restarted %v, want success with 4", got.Result, got.Message, got.Restarted)
	}
	if out.Result != ResultSuccess {
		t.Errorf("run = %s, want success", out.Result)
	}
	f.assertSafe(t, 2)
}

func TestRunReplacedInstances(t *testing.T) {
	f := newFake()
	a := f.addApp("app-1", "web-1", 5)
	a.replace = true
	a.healthDelay = 20 * time.Second // the gate waits for NotCheckedYet replacements
	out := runFake(t, context.Background(), f, schedule(testPolicy(), byID("app-1")...), nil)
	got := appOutcome(t, out, "app-1")
	if got.Result != ResultSuccess || len(got.Restarted) != 5 {
		t.Errorf("app = %s (%s), restarted %v, want success with 5", got.Result, got.Message, got.Restarted)
	}
	for _, r := range f.restarts {
		for _, id := range r.ids {
			if strings.HasSuffix(id, "-r") {
				t.Errorf("restarted replacement %s", id)
			}
		}
	}
	if n := f.restartCount(); n != 3 {
		t.Errorf("change orders = %d, want 3", n)
	}
	f.assertSafe(t, 2)
}

func TestRunSkipsAndFailures(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(f *fakeSAE)
		sel        []AppSelector
		wantApp    Result
		wantReason string
		wantCode   string
		wantRun    Result
	}{
		{name: "an app not deployed is skipped",
			setup: func(f *fakeSAE) {
				f.failWith("ListInstances", saeErr(ClassNotDeployed, "DescribeApplicationGroups", "Application.NotDeployYet"))
			},
			wantApp: ResultSkipped, wantReason: ReasonNotDeployed, wantCode: "Application.NotDeployYet", wantRun: ResultSkipped},
		{name: "a stopped app is skipped",
			setup:   func(f *fakeSAE) { f.apps["app-1"].stopped = true },
			wantApp: ResultSkipped, wantReason: ReasonAppStopped, wantRun: ResultSkipped},
		{name: "an app with no instances is skipped",
			setup:   func(f *fakeSAE) { f.apps["app-1"].instances = nil },
			wantApp: ResultSkipped, wantReason: ReasonAppStopped, wantRun: ResultSkipped},
		{name: "an app not found fails with SAE's code",
			sel:     byID("app-404"),
			wantApp: ResultFailed, wantCode: "InvalidApplication.NotFound", wantRun: ResultFailed},
		{name: "min_ready 100% is unsatisfiable",
			setup:   func(f *fakeSAE) {},
			wantApp: ResultFailed, wantReason: CodeMinReadyUnsatisfiable, wantRun: ResultFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.addApp("app-1", "web-1", 4)
			p := testPolicy()
			if tt.wantReason == CodeMinReadyUnsatisfiable {
				p.MinReady = Quantity{Value: 100, Percent: true}
			}
			if tt.setup != nil {
				tt.setup(f)
			}
			sel := tt.sel
			if sel == nil {
				sel = byID("app-1")
			}
			out := runFake(t, context.Background(), f, schedule(p, sel...), nil)
			got := out.Apps[0]
			if got.Result != tt.wantApp || got.Reason != tt.wantReason || got.Code != tt.wantCode {
				t.Errorf("app = %s/%s/%s (%s), want %s/%s/%s", got.Result, got.Reason, got.Code, got.Message,
					tt.wantApp, tt.wantReason, tt.wantCode)
			}
			if out.Result != tt.wantRun {
				t.Errorf("run = %s, want %s", out.Result, tt.wantRun)
			}
			if n := f.restartCount(); n != 0 {
				t.Errorf("change orders = %d, want 0", n)
			}
		})
	}
}

func TestRunMinReadyShrinksBatches(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 4)
	p := testPolicy()
	p.BatchSize = Quantity{Value: 50, Percent: true}
	p.MinReady = Quantity{Value: 75, Percent: true}
	out := runFake(t, context.Background(), f, schedule(p, byID("app-1")...), nil)
	if got := appOutcome(t, out, "app-1"); got.Result != ResultSuccess || len(got.Batches) != 4 {
		t.Errorf("app = %s with %d batches, want success with 4", got.Result, len(got.Batches))
	}
	f.assertSafe(t, 1)
}

func TestRunWindowEnds(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 6)
	p := testPolicy()
	p.Pause = 5 * time.Minute
	p.Window = 8 * time.Minute
	out := runFake(t, context.Background(), f, schedule(p, byID("app-1")...), nil)
	got := appOutcome(t, out, "app-1")
	if got.Result != ResultDeadlineExceeded {
		t.Errorf("app = %s (%s), want deadline_exceeded", got.Result, got.Message)
	}
	if len(got.Restarted) != 4 || len(got.NotRestarted) != 2 {
		t.Errorf("restarted %v, not restarted %v, want 4 and 2", got.Restarted, got.NotRestarted)
	}
	if out.Result != ResultDeadlineExceeded {
		t.Errorf("run = %s, want deadline_exceeded", out.Result)
	}
	f.assertSafe(t, 2)
}

func TestRunCancelMidBatch(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 6)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{hook: func(e Event) {
		if e.Kind == EventBatchSubmitted && e.Batch == 2 {
			cancel()
		}
	}}
	out := runFake(t, ctx, f, schedule(testPolicy(), byID("app-1")...), rec)
	got := appOutcome(t, out, "app-1")
	if got.Result != ResultCancelled || out.Result != ResultCancelled {
		t.Errorf("app = %s, run = %s, want cancelled", got.Result, out.Result)
	}
	if n := f.restartCount(); n != 2 {
		t.Errorf("change orders = %d, want 2 (no batch after the cancel)", n)
	}
	if len(got.Batches) != 2 || got.Batches[1].Result != ResultSuccess {
		t.Errorf("batches = %+v, want batch 2 watched to its success", got.Batches)
	}
	if len(got.Restarted) != 4 || len(got.NotRestarted) != 2 {
		t.Errorf("restarted %v, not restarted %v, want 4 and 2", got.Restarted, got.NotRestarted)
	}
	f.assertSafe(t, 2)
}

func TestRunConcurrencyAndFailureBudget(t *testing.T) {
	f := newFake()
	bad := f.addApp("app-a", "web-a", 2)
	bad.end = func(int) (int, int) { return COFailed, 0 }
	f.addApp("app-b", "web-b", 6)
	f.addApp("app-c", "web-c", 2)
	p := testPolicy()
	p.AppConcurrency = 2
	out := runFake(t, context.Background(), f, schedule(p, byID("app-a", "app-b", "app-c")...), nil)
	want := map[string]Result{"app-a": ResultFailed, "app-b": ResultSuccess, "app-c": ResultSkipped}
	for id, res := range want {
		if got := appOutcome(t, out, id); got.Result != res {
			t.Errorf("app %s = %s (%s), want %s", id, got.Result, got.Reason, res)
		}
	}
	if got := appOutcome(t, out, "app-c"); got.Reason != ReasonFailureBudget {
		t.Errorf("app-c reason = %q, want %q", got.Reason, ReasonFailureBudget)
	}
	if out.Result != ResultPartial || out.Reason != CodeChangeOrderFailed {
		t.Errorf("run = %s/%s, want partial/%s", out.Result, out.Reason, CodeChangeOrderFailed)
	}
	if f.maxBusy != 2 {
		t.Errorf("apps restarting at once = %d, want 2", f.maxBusy)
	}
	f.assertSafe(t, 2)
}

func TestRunAccountErrorEndsTheRun(t *testing.T) {
	f := newFake()
	f.addApp("app-a", "web-a", 4)
	f.addApp("app-b", "web-b", 4)
	f.failWith("RestartInstances/app-a", saeErr(ClassAccount, "RestartInstances", "user.indebt"))
	out := runFake(t, context.Background(), f, schedule(testPolicy(), byID("app-a", "app-b")...), nil)
	if out.Result != ResultFailed || out.Reason != "user.indebt" {
		t.Errorf("run = %s/%s, want failed/user.indebt", out.Result, out.Reason)
	}
	if got := appOutcome(t, out, "app-b"); got.Result != ResultSkipped || got.Reason != ReasonRunAborted {
		t.Errorf("app-b = %s/%s, want skipped/%s", got.Result, got.Reason, ReasonRunAborted)
	}
	if n := f.restartCount(); n != 0 {
		t.Errorf("change orders = %d, want 0", n)
	}
}

func TestRunStaleAndAmbiguousSubmits(t *testing.T) {
	tests := []struct {
		name        string
		errs        []error
		wantApp     Result
		wantReason  string
		wantCOs     int
		wantVanish  int
		removeFirst bool
	}{
		{name: "stale instance IDs: re-listed once, vanished dropped, resubmitted", removeFirst: true,
			wantApp: ResultSuccess, wantCOs: 2, wantVanish: 1},
		{name: "stale twice fails the batch",
			errs: []error{saeErr(ClassStaleInstances, "RestartInstances", "InvalidParameter.Obviously"),
				saeErr(ClassStaleInstances, "RestartInstances", "InvalidParameter.Obviously")},
			wantApp: ResultFailed, wantReason: "InvalidParameter.Obviously"},
		{name: "an ambiguous submit is not resubmitted",
			errs:    []error{saeErr(ClassAmbiguous, "RestartInstances", "transport")},
			wantApp: ResultFailed, wantReason: CodeAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			a := f.addApp("app-1", "web-1", 4)
			f.failWith("RestartInstances", tt.errs...)
			if tt.removeFirst {
				a.vanish = a.instances[0].ID // gone right after the plan's listing
			}
			out := runFake(t, context.Background(), f, schedule(testPolicy(), byID("app-1")...), nil)
			got := appOutcome(t, out, "app-1")
			if got.Result != tt.wantApp || got.Reason != tt.wantReason {
				t.Errorf("app = %s/%s (%s), want %s/%s", got.Result, got.Reason, got.Message, tt.wantApp, tt.wantReason)
			}
			if n := f.restartCount(); n != tt.wantCOs {
				t.Errorf("change orders = %d, want %d", n, tt.wantCOs)
			}
			if len(got.Vanished) != tt.wantVanish {
				t.Errorf("vanished = %v, want %d", got.Vanished, tt.wantVanish)
			}
			f.assertSafe(t, 2)
		})
	}
}

func TestRunSelectors(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 2)
	f.addApp("app-2", "web-2", 2)
	f.addApp("app-3", "ops-scheduler", 2)
	sels := []AppSelector{
		{NamespaceID: "cn-hangzhou:prod", AppName: "*", Exclude: []string{"ops-*"}},
		{AppID: "app-1"}, // named twice: restarted once
		{NamespaceID: "cn-hangzhou:prod", AppName: "api-*"},
	}
	out := runFake(t, context.Background(), f, schedule(testPolicy(), sels...), nil)
	var ids []string
	for _, a := range out.Apps {
		ids = append(ids, a.App.ID+":"+string(a.Result)+":"+a.Reason)
	}
	slices.Sort(ids)
	want := []string{":failed:" + CodeNoMatch, "app-1:success:", "app-2:success:"}
	if !slices.Equal(ids, want) {
		t.Errorf("apps = %v, want %v", ids, want)
	}
	if out.Result != ResultPartial {
		t.Errorf("run = %s, want partial (a selector failed, others restarted)", out.Result)
	}
	f.assertSafe(t, 2)
}

// pollingWorld is the benchmark's world on the fake: 10 apps × 50
// instances, batch 5, each app's restart time drawn once from 30–90 s and
// its batches ±10% around it, one app at a time, 30 s pauses.
func pollingWorld(t *testing.T, poller Poller) (callsPerBatch, pollsPerBatch float64, lag time.Duration) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	f := newFake()
	var ids []string
	for i := range 10 {
		id := "app-" + string(rune('a'+i))
		a := f.addApp(id, "web-"+id, 50)
		base := 30 + 60*rng.Float64()
		var ds []time.Duration
		for range 10 {
			ds = append(ds, time.Duration(base*(0.9+0.2*rng.Float64())*float64(time.Second)))
		}
		a.restartTime = func(n int) time.Duration { return ds[(n-1)%len(ds)] }
		ids = append(ids, id)
	}
	p := testPolicy()
	p.BatchSize = Quantity{Value: 5}
	p.Window = 24 * time.Hour
	out := runFake(t, context.Background(), f, schedule(p, byID(ids...)...), nil, func(r *Runner) { r.Poller = poller })
	if out.Result != ResultSuccess {
		t.Fatalf("run = %s, want success", out.Result)
	}
	f.assertSafe(t, 5)
	// lag: from a change order's end to the app's next submit, minus the pause.
	var sum time.Duration
	n := 0
	for i := 1; i < len(f.restarts); i++ {
		prev, next := f.cos[f.restarts[i-1].co], f.cos[f.restarts[i].co]
		if prev.app == next.app {
			sum += next.created.Sub(prev.ends) - p.Pause
			n++
		}
	}
	batches := float64(len(f.restarts))
	return float64(f.totalCalls()) / batches, float64(f.calls["DescribeChangeOrder"]) / batches, sum / time.Duration(n)
}

// TestPollingCallsPerBatch measures SAE calls per batch (each SAE method
// call counts 1; ListInstances is more HTTP calls in internal/sae) and the
// mean lag of the pollers on the benchmark's world.
func TestPollingCallsPerBatch(t *testing.T) {
	tests := []struct {
		name     string
		poller   Poller
		maxCalls float64
		maxLag   time.Duration
	}{
		{name: "adaptive", poller: AdaptivePoller{}, maxCalls: 3.7, maxLag: time.Second},
		{name: "adaptive, lag 10%", poller: AdaptivePoller{Lag: 0.1}, maxCalls: 3.7, maxLag: time.Second},
		{name: "terraform", poller: TerraformPoller{}, maxCalls: 12, maxLag: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, polls, lag := pollingWorld(t, tt.poller)
			t.Logf("%s: calls/batch = %.2f, DescribeChangeOrder/batch = %.2f, mean lag = %s", tt.name, calls, polls, lag)
			if calls > tt.maxCalls {
				t.Errorf("calls/batch = %.2f, want <= %.2f", calls, tt.maxCalls)
			}
			if lag > tt.maxLag {
				t.Errorf("mean lag = %s, want <= %s", lag, tt.maxLag)
			}
		})
	}
}
