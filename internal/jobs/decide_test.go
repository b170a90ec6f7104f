package jobs

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var now0 = time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)

// inst is a Running, Healthy instance created age before now0.
func inst(id string, age time.Duration) Instance {
	return Instance{ID: id, ContainerStatus: "Running", HealthStatus: "Healthy", CreateTime: now0.Add(-age)}
}

func TestPlanApp(t *testing.T) {
	day := 24 * time.Hour
	four := []Instance{inst("d", 1*day), inst("b", 3*day), inst("c", 3*day), inst("a", 4*day)}
	sick := slices.Clone(four)
	sick[0].HealthStatus = "ReadinessUnhealthy"
	tests := []struct {
		name        string
		instances   []Instance
		policy      Policy
		wantBatches [][]string
		wantResult  Result
		wantReason  string
		wantWarn    int
	}{
		{name: "oldest first by create time then ID, count batches",
			instances: four, policy: Policy{BatchSize: Quantity{Value: 3}},
			wantBatches: [][]string{{"a", "b", "c"}, {"d"}}},
		{name: "percent of the instances rounded up",
			instances: four, policy: Policy{BatchSize: Quantity{Value: 30, Percent: true}},
			wantBatches: [][]string{{"a", "b"}, {"c", "d"}}},
		{name: "a tiny percent is at least 1",
			instances: four, policy: Policy{BatchSize: Quantity{Value: 1, Percent: true}},
			wantBatches: [][]string{{"a"}, {"b"}, {"c"}, {"d"}}},
		{name: "min_age leaves fresh instances out",
			instances: four, policy: Policy{BatchSize: Quantity{Value: 2}, MinAge: 2 * day},
			wantBatches: [][]string{{"a", "b"}, {"c"}}, wantWarn: 1},
		{name: "all fresh: success with nothing to do",
			instances: four, policy: Policy{BatchSize: Quantity{Value: 2}, MinAge: 30 * day},
			wantResult: ResultSuccess, wantReason: ReasonAllFresh, wantWarn: 1},
		{name: "min_ready 75% of 4 shrinks batches of 2 to 1",
			instances: four, policy: Policy{BatchSize: Quantity{Value: 2}, MinReady: Quantity{Value: 75, Percent: true}},
			wantBatches: [][]string{{"a"}, {"b"}, {"c"}, {"d"}}, wantWarn: 1},
		{name: "min_ready counts only ready instances",
			instances: sick, policy: Policy{BatchSize: Quantity{Value: 2}, MinReady: Quantity{Value: 2}},
			wantBatches: [][]string{{"a"}, {"b"}, {"c"}, {"d"}}, wantWarn: 1},
		{name: "min_ready leaving a batch of 0 is unsatisfiable",
			instances: sick, policy: Policy{BatchSize: Quantity{Value: 2}, MinReady: Quantity{Value: 3}},
			wantResult: ResultFailed, wantReason: CodeMinReadyUnsatisfiable},
		{name: "a 1-instance app is planned with an outage warning",
			instances: four[:1], policy: Policy{BatchSize: Quantity{Value: 25, Percent: true}},
			wantBatches: [][]string{{"d"}}, wantWarn: 1},
		{name: "no instances: skipped app_stopped",
			policy:     Policy{BatchSize: Quantity{Value: 2}},
			wantResult: ResultSkipped, wantReason: ReasonAppStopped},
		{name: "an instance listed twice is planned once",
			instances: append(slices.Clone(four[:2]), four[1]), policy: Policy{BatchSize: Quantity{Value: 5}},
			wantBatches: [][]string{{"b", "d"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanApp(App{ID: "app"}, tt.instances, tt.policy, now0)
			if !reflect.DeepEqual(p.Batches, tt.wantBatches) {
				t.Errorf("PlanApp().Batches = %v, want %v", p.Batches, tt.wantBatches)
			}
			if p.Result != tt.wantResult || p.Reason != tt.wantReason {
				t.Errorf("PlanApp() = %s/%s, want %s/%s", p.Result, p.Reason, tt.wantResult, tt.wantReason)
			}
			if len(p.Warnings) != tt.wantWarn {
				t.Errorf("PlanApp().Warnings = %q, want %d", p.Warnings, tt.wantWarn)
			}
			again := PlanApp(App{ID: "app"}, tt.instances, tt.policy, now0)
			if !reflect.DeepEqual(p, again) {
				t.Errorf("PlanApp() is not deterministic: %+v then %+v", p, again)
			}
		})
	}
}

func TestClassifyChangeOrder(t *testing.T) {
	tests := []struct {
		status, sub int
		want        Verdict
	}{
		{COPreparing, 0, VerdictInProgress},
		{CORunning, 0, VerdictInProgress},
		{COWaitAutoBatch, 0, VerdictInProgress},
		{COApprovedPending, 0, VerdictInProgress},
		{COSucceeded, 0, VerdictSucceeded},
		{COSucceeded, 1, VerdictSucceeded},
		{COFailed, 0, VerdictFailed},
		{COAborted, 0, VerdictFailed},
		{COSystemFailed, 1, VerdictFailed},
		{CORunning, 1, VerdictAbnormal},
		{COWaitConfirm, 1, VerdictAbnormal},
		{COWaitConfirm, 0, VerdictNeedsHuman},
		{COWaitApproval, 0, VerdictNeedsHuman},
		{42, 0, VerdictInProgress},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("status %d sub %d is %s", tt.status, tt.sub, tt.want), func(t *testing.T) {
			if got := ClassifyChangeOrder(ChangeOrder{Status: tt.status, SubStatus: tt.sub}); got != tt.want {
				t.Errorf("ClassifyChangeOrder(%d, %d) = %s, want %s", tt.status, tt.sub, got, tt.want)
			}
		})
	}
}

func TestJudgeHealth(t *testing.T) {
	start := []Instance{inst("a", time.Hour), inst("b", time.Hour), inst("c", time.Hour)}
	with := func(in Instance, container, health string) Instance {
		in.ContainerStatus, in.HealthStatus = container, health
		return in
	}
	tests := []struct {
		name string
		now  []Instance
		want bool
	}{
		{name: "restarted in place and healthy", now: start, want: true},
		{name: "no probes configured passes",
			now: []Instance{with(start[0], "Running", "WithoutHealthCheckConfig"), start[1], start[2]}, want: true},
		{name: "restarted instance not checked yet fails",
			now: []Instance{with(start[0], "Running", "NotCheckedYet"), start[1], start[2]}},
		{name: "restarted instance pending fails",
			now: []Instance{with(start[0], "Pending", "Healthy"), start[1], start[2]}},
		{name: "replaced by healthy instances passes",
			now: []Instance{inst("a2", 0), inst("b2", 0), start[2]}, want: true},
		{name: "a replacement unhealthy fails",
			now: []Instance{inst("a2", 0), with(inst("b2", 0), "Running", "LivenessUnhealthy"), start[2]}},
		{name: "count not back fails",
			now: []Instance{inst("a2", 0), start[2]}},
		{name: "a terminating old pod does not count",
			now: []Instance{with(start[0], "Terminating", "Healthy"), inst("a2", 0), start[2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := JudgeHealth(start, []string{"a", "b"}, tt.now)
			if ok != tt.want {
				t.Errorf("JudgeHealth() = %v (%s), want %v", ok, why, tt.want)
			}
			if !ok && why == "" {
				t.Error("JudgeHealth() failed without saying why")
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name    string
		attempt int
		rnd     func() float64
		want    time.Duration
	}{
		{name: "first retry waits 3 s", attempt: 0, want: 3 * time.Second},
		{name: "doubles", attempt: 2, want: 12 * time.Second},
		{name: "caps at 60 s", attempt: 10, want: time.Minute},
		{name: "jitter low end is -20%", attempt: 1, rnd: func() float64 { return 0 }, want: 4800 * time.Millisecond},
		{name: "jitter high end is +20%", attempt: 10, rnd: func() float64 { return 1 }, want: 72 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Backoff(tt.attempt, tt.rnd); got != tt.want {
				t.Errorf("Backoff(%d) = %s, want %s", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestLockPollInterval(t *testing.T) {
	want := []time.Duration{10 * time.Second, 15 * time.Second, 22500 * time.Millisecond, 33750 * time.Millisecond,
		50625 * time.Millisecond, time.Minute, time.Minute}
	for i, w := range want {
		if got := LockPollInterval(i); got != w {
			t.Errorf("LockPollInterval(%d) = %s, want %s", i, got, w)
		}
	}
}

func TestAdaptivePoller(t *testing.T) {
	s := time.Second
	tests := []struct {
		name  string
		state PollState
		want  time.Duration
	}{
		{name: "first batch probes at the initial guess", state: PollState{}, want: 30 * s},
		{name: "first batch then backs off by growth", state: PollState{Elapsed: 30 * s, Polls: 1}, want: 15 * s},
		{name: "first batch backoff is capped", state: PollState{Elapsed: 200 * s, Polls: 5}, want: 60 * s},
		{name: "one batch known, no slack: look at its duration",
			state: PollState{History: []time.Duration{60 * s}}, want: 60 * s},
		{name: "one batch known, no slack: then every 10% of it",
			state: PollState{History: []time.Duration{60 * s}, Elapsed: 60 * s, Polls: 1}, want: 6 * s},
		{name: "one batch known, a pause to absorb lag: look at the high end",
			state: PollState{History: []time.Duration{60 * s}, Slack: 30 * s}, want: 66 * s},
		{name: "several batches: the widened range's high end with slack",
			state: PollState{History: []time.Duration{60 * s, 64 * s, 62 * s}, Slack: 30 * s}, want: 65 * s},
		{name: "past the predicted range it backs off",
			state: PollState{History: []time.Duration{60 * s}, Elapsed: 120 * s, Polls: 4}, want: 60 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (AdaptivePoller{}).NextPoll(tt.state); got != tt.want {
				t.Errorf("NextPoll(%+v) = %s, want %s", tt.state, got, tt.want)
			}
		})
	}
}

func TestTerraformPoller(t *testing.T) {
	want := []time.Duration{3 * time.Second, 3 * time.Second, 6 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := (TerraformPoller{}).NextPoll(PollState{Polls: i}); got != w {
			t.Errorf("NextPoll(polls=%d) = %s, want %s", i, got, w)
		}
	}
}

func TestAggregate(t *testing.T) {
	ok := AppOutcome{Result: ResultSuccess, Restarted: []string{"x"}}
	tests := []struct {
		name       string
		apps       []AppOutcome
		want       Result
		wantReason string
	}{
		{name: "all success", apps: []AppOutcome{ok, ok}, want: ResultSuccess},
		{name: "success with a skipped app is success",
			apps: []AppOutcome{ok, {Result: ResultSkipped, Reason: ReasonAppStopped}}, want: ResultSuccess},
		{name: "all skipped with one reason",
			apps: []AppOutcome{{Result: ResultSkipped, Reason: ReasonLockBusy}, {Result: ResultSkipped, Reason: ReasonLockBusy}},
			want: ResultSkipped, wantReason: ReasonLockBusy},
		{name: "all skipped with mixed reasons",
			apps: []AppOutcome{{Result: ResultSkipped, Reason: ReasonLockBusy}, {Result: ResultSkipped, Reason: ReasonAppStopped}},
			want: ResultSkipped},
		{name: "a failure with nothing restarted is failed",
			apps: []AppOutcome{{Result: ResultFailed, Code: "InvalidApplication.NotFound"}, {Result: ResultSkipped}},
			want: ResultFailed, wantReason: "InvalidApplication.NotFound"},
		{name: "a failure after restarts is partial",
			apps: []AppOutcome{ok, {Result: ResultFailed, Reason: CodeHealthGate}}, want: ResultPartial, wantReason: CodeHealthGate},
		{name: "cancelled wins", apps: []AppOutcome{{Result: ResultFailed}, {Result: ResultCancelled}}, want: ResultCancelled},
		{name: "needs confirmation over deadline",
			apps: []AppOutcome{{Result: ResultDeadlineExceeded}, {Result: ResultNeedsConfirmation}}, want: ResultNeedsConfirmation},
		{name: "deadline over partial",
			apps: []AppOutcome{{Result: ResultPartial}, {Result: ResultDeadlineExceeded}}, want: ResultDeadlineExceeded},
		{name: "no apps is skipped", want: ResultSkipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := aggregate(tt.apps)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("aggregate() = %s/%s, want %s/%s", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestSelects(t *testing.T) {
	tests := []struct {
		name string
		sel  AppSelector
		app  string
		want bool
	}{
		{name: "glob matches", sel: AppSelector{AppName: "web-*"}, app: "web-1", want: true},
		{name: "glob does not match", sel: AppSelector{AppName: "web-*"}, app: "api-1"},
		{name: "exclude wins", sel: AppSelector{AppName: "*", Exclude: []string{"ops-*"}}, app: "ops-scheduler"},
		{name: "malformed pattern matches nothing", sel: AppSelector{AppName: "web-["}, app: "web-["},
		{name: "malformed exclude excludes", sel: AppSelector{AppName: "*", Exclude: []string{"["}}, app: "web-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Selects(tt.sel, tt.app); got != tt.want {
				t.Errorf("Selects(%+v, %q) = %v, want %v", tt.sel, tt.app, got, tt.want)
			}
		})
	}
}

func TestRunnerPlanIsReadOnly(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 4)
	f.addApp("app-2", "web-2", 1)
	f.apps["app-2"].stopped = true
	f.holdLock("app-1", time.Hour)
	r := &Runner{SAE: StaticSAE(f), Clock: f.clk}
	s := schedule(testPolicy(), AppSelector{NamespaceID: "cn-hangzhou:prod", AppName: "web-*"}, AppSelector{AppID: "app-9"})
	plan, err := r.Plan(context.Background(), s, f.clk.Now())
	if err != nil {
		t.Fatalf("Plan() error = %v", err)
	}
	var got []string
	for _, a := range plan.Apps {
		got = append(got, fmt.Sprintf("%s:%s:%s:%d", a.App.ID, a.Result, a.Reason+a.Code, len(a.Batches)))
	}
	want := []string{"app-9:failed:InvalidApplication.NotFound:0", "app-1:::2", "app-2:skipped:app_stopped:0"}
	if !slices.Equal(got, want) {
		t.Errorf("Plan() apps = %v, want %v", got, want)
	}
	if len(plan.Apps) > 1 && len(plan.Apps[1].Warnings) != 1 {
		t.Errorf("Plan() app-1 warnings = %q, want the running change order", plan.Apps[1].Warnings)
	}
	for _, mutating := range []string{"RestartInstances", "AbortChangeOrder"} {
		if f.calls[mutating] != 0 {
			t.Errorf("Plan() called %s %d times, want 0", mutating, f.calls[mutating])
		}
	}
}

func TestPreflight(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web-1", 1)
	f.failWith("ListApplications", saeErr(ClassAccount, "ListApplications", "InvalidAccessKeyId.NotFound"))
	r := &Runner{SAE: StaticSAE(f), Clock: f.clk}
	s1 := schedule(testPolicy(), AppSelector{AppID: "app-1"}, AppSelector{AppID: "app-9"},
		AppSelector{NamespaceID: "cn-hangzhou:prod", AppName: "web-*"})
	s2 := schedule(testPolicy(), AppSelector{AppID: "app-1"}) // the same read: checked once
	var got []string
	for _, p := range r.Preflight(context.Background(), []Schedule{s1, s2}) {
		got = append(got, p.Target+":"+CodeOf(p.Err))
	}
	want := []string{"app-1:", "app-9:InvalidApplication.NotFound", "cn-hangzhou:prod/web-*:InvalidAccessKeyId.NotFound"}
	if !slices.Equal(got, want) {
		t.Errorf("Preflight() = %v, want %v", got, want)
	}
}

func TestRunPlanWriteText(t *testing.T) {
	plan := RunPlan{Schedule: "nightly", At: now0, Apps: []AppPlan{
		PlanApp(App{ID: "app-1", Name: "web-1"}, []Instance{inst("a", time.Hour)}, Policy{BatchSize: Quantity{Value: 1}}, now0),
		{App: App{NamespaceID: "cn-hangzhou:prod", Name: "api-*"}, Result: ResultFailed, Reason: CodeNoMatch, Message: "no app matches"},
	}}
	var b strings.Builder
	if err := plan.WriteText(&b); err != nil {
		t.Fatalf("WriteText() error = %v", err)
	}
	want := `schedule nightly at 2025-03-01T03:00:00Z: 2 apps
app web-1 (app-1): 1 of 1 instances in 1 batches of up to 1
  batch 1/1: a
  warning: restarting a 1-instance app is an outage
app cn-hangzhou:prod/api-*: failed no_app_matched: no app matches
`
	if b.String() != want {
		t.Errorf("WriteText() =\n%s\nwant\n%s", b.String(), want)
	}
}
