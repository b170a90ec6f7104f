package metrics

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

var t0 = time.Date(2025, 3, 9, 2, 30, 0, 0, time.UTC)

func newTest(t testing.TB, scheds ...ScheduleInfo) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg, "v1.2.3")
	m.SetSchedules(scheds)
	return m, reg
}

func sched(name string) ScheduleInfo { return ScheduleInfo{Name: name} }

var (
	appA = jobs.App{ID: "app-a-id", Name: "orders", NamespaceID: "cn-hangzhou:prod"}
	appB = jobs.App{ID: "app-b-id", Name: "billing", NamespaceID: "cn-hangzhou:prod"}
)

// runEvents is one complete run of schedule over apps: every app gets one
// batch of two instances ending with batchResult; the run ends with result.
func runEvents(schedule string, result, batchResult jobs.Result, apps ...jobs.App) []jobs.Event {
	start, end := t0, t0.Add(20*time.Minute)
	evs := []jobs.Event{{Kind: jobs.EventRunStarted, Schedule: schedule, ScheduledAt: t0, Time: start}}
	for _, a := range apps {
		evs = append(evs,
			jobs.Event{Kind: jobs.EventAppResolved, Schedule: schedule, App: a, Time: start},
			jobs.Event{Kind: jobs.EventLockWaitStarted, Schedule: schedule, App: a, Time: start},
			jobs.Event{Kind: jobs.EventLockWaitEnded, Schedule: schedule, App: a, Duration: 30 * time.Second},
			jobs.Event{Kind: jobs.EventBatchSubmitted, Schedule: schedule, App: a, Batch: 1, Batches: 1,
				ChangeOrderID: "co-1", Instances: []string{"i-1", "i-2"}},
			jobs.Event{Kind: jobs.EventBatchEnded, Schedule: schedule, App: a, Batch: 1, Result: batchResult,
				Duration: 90 * time.Second},
			jobs.Event{Kind: jobs.EventAppEnded, Schedule: schedule, App: a, Time: end,
				AppOutcome: &jobs.AppOutcome{App: a, Result: batchResult, Ended: end}},
		)
	}
	return append(evs, jobs.Event{Kind: jobs.EventRunEnded, Schedule: schedule, Time: end,
		Run: &jobs.RunOutcome{Schedule: schedule, ScheduledAt: t0, Started: start, Ended: end, Result: result}})
}

func observeAll(m *Metrics, evs []jobs.Event) {
	for _, e := range evs {
		m.Observe(e)
	}
}

func TestNewRegistersBuildInfoAndRuntimeCollectors(t *testing.T) {
	_, reg := newTest(t)
	if v := mustValue(t, reg, "sae_scheduler_build_info", map[string]string{"version": "v1.2.3", "goversion": runtime.Version()}); v != 1 {
		t.Errorf("build_info = %v, want 1", v)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds",
		"sae_scheduler_sae_quota_wait_seconds_total", "sae_scheduler_config_last_reload_successful",
		"sae_scheduler_change_order_wait_seconds", "sae_scheduler_lock_wait_seconds"} {
		if n := count(t, reg, name, nil); n != 1 {
			t.Errorf("count(%s) = %d, want 1", name, n)
		}
	}
}

func TestSetSchedulesCreatesEveryScheduleSeriesAtZero(t *testing.T) {
	_, reg := newTest(t, sched("nightly"), ScheduleInfo{Name: "paused", Suspended: true})
	type want struct {
		name   string
		labels map[string]string
		value  float64
	}
	var wants []want
	for _, r := range RunResults {
		wants = append(wants, want{"sae_scheduler_runs_total", map[string]string{"result": string(r)}, 0})
	}
	for _, r := range SkipReasons {
		wants = append(wants, want{"sae_scheduler_skipped_runs_total", map[string]string{"reason": r}, 0})
	}
	for _, n := range []string{"last_run_timestamp_seconds", "last_success_timestamp_seconds",
		"next_run_timestamp_seconds", "run_in_progress", "last_scheduled_timestamp_seconds",
		"run_deadline_timestamp_seconds", "schedule_suspended", "run_duration_seconds"} {
		wants = append(wants, want{"sae_scheduler_" + n, nil, 0})
	}
	wants = append(wants, want{"sae_scheduler_schedule_info", nil, 1})
	for _, w := range wants {
		labels := map[string]string{"schedule": "nightly"}
		for k, v := range w.labels {
			labels[k] = v
		}
		if got := mustValue(t, reg, w.name, labels); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, labels, got, w.value)
		}
	}
	if got := mustValue(t, reg, "sae_scheduler_schedule_suspended", map[string]string{"schedule": "paused"}); got != 1 {
		t.Errorf("schedule_suspended{paused} = %v, want 1", got)
	}
	// Every schedule has the same number of series; nothing per app yet.
	if a, b := len(scheduleSeries(t, reg, "nightly")), len(scheduleSeries(t, reg, "paused")); a != b || a != len(wants) {
		t.Errorf("series per schedule = %d and %d, want %d", a, b, len(wants))
	}
	if n := count(t, reg, "sae_scheduler_batches_total", nil); n != 0 {
		t.Errorf("batches_total series before any run = %d, want 0", n)
	}
}

func TestSetSchedulesReloadRemovesDeletedSchedulesAndKeepsOthers(t *testing.T) {
	m, reg := newTest(t, sched("kept"), sched("removed"))
	observeAll(m, runEvents("kept", jobs.ResultSuccess, jobs.ResultSuccess, appA))
	observeAll(m, runEvents("removed", jobs.ResultSuccess, jobs.ResultSuccess, appB))
	m.SetNextRun("removed", t0.Add(24*time.Hour))

	m.SetSchedules([]ScheduleInfo{sched("kept"), sched("added")})

	if got := scheduleSeries(t, reg, "removed"); len(got) != 0 {
		t.Errorf("series of the removed schedule after reload = %v, want none", got)
	}
	if got := mustValue(t, reg, "sae_scheduler_last_success_timestamp_seconds", map[string]string{"schedule": "kept"}); got != unix(t0.Add(20*time.Minute)) {
		t.Errorf("last_success{kept} after reload = %v, want %v (kept)", got, unix(t0.Add(20*time.Minute)))
	}
	if got := mustValue(t, reg, "sae_scheduler_runs_total", map[string]string{"schedule": "kept", "result": "success"}); got != 1 {
		t.Errorf("runs_total{kept,success} after reload = %v, want 1 (kept)", got)
	}
	if got := mustValue(t, reg, "sae_scheduler_runs_total", map[string]string{"schedule": "added", "result": "failed"}); got != 0 {
		t.Errorf("runs_total{added,failed} = %v, want 0", got)
	}

	// A run of the removed schedule that outlived the reload does not bring
	// its series back.
	observeAll(m, runEvents("removed", jobs.ResultFailed, jobs.ResultFailed, appB))
	m.Skipped("removed", jobs.ReasonOverlap, t0)
	m.Scheduled("removed", t0)
	m.SetNextRun("removed", t0)
	m.RestoreTimestamps("removed", t0, t0, t0)
	if got := scheduleSeries(t, reg, "removed"); len(got) != 0 {
		t.Errorf("series of the removed schedule after late events = %v, want none", got)
	}
}

func TestSetSchedulesReloadResetsPerAppSeries(t *testing.T) {
	m, reg := newTest(t, sched("nightly"))
	observeAll(m, runEvents("nightly", jobs.ResultSuccess, jobs.ResultSuccess, appA, appB))
	if n := count(t, reg, "sae_scheduler_batches_total", map[string]string{"schedule": "nightly"}); n != 2*len(PreinitBatchResults) {
		t.Fatalf("batches_total series after a run on 2 apps = %d, want %d", n, 2*len(PreinitBatchResults))
	}

	m.SetSchedules([]ScheduleInfo{sched("nightly")})

	for _, name := range []string{"sae_scheduler_batches_total", "sae_scheduler_instances_restarted_total",
		"sae_scheduler_app_last_success_timestamp_seconds", "sae_scheduler_app_info"} {
		if n := count(t, reg, name, nil); n != 0 {
			t.Errorf("count(%s) after reload = %d, want 0", name, n)
		}
	}

	// The next resolution brings them back, every result at 0 first.
	m.Observe(jobs.Event{Kind: jobs.EventAppResolved, Schedule: "nightly", App: appA})
	if n := count(t, reg, "sae_scheduler_batches_total", map[string]string{"app": appA.ID}); n != len(PreinitBatchResults) {
		t.Errorf("batches_total{app-a} after resolution = %d series, want %d", n, len(PreinitBatchResults))
	}
	// A batch ending after the reload without a new resolution (a run that
	// straddles the reload) also creates the app's whole set.
	m.Observe(jobs.Event{Kind: jobs.EventBatchEnded, Schedule: "nightly", App: appB, Batch: 2, Result: jobs.ResultSuccess})
	if n := count(t, reg, "sae_scheduler_batches_total", map[string]string{"app": appB.ID}); n != len(PreinitBatchResults) {
		t.Errorf("batches_total{app-b} after a straddling batch = %d series, want %d", n, len(PreinitBatchResults))
	}
}

func TestObserveEveryFireAddsExactlyOneToRunsTotal(t *testing.T) {
	tests := []struct {
		name        string
		events      []jobs.Event
		wantResult  string
		wantSkipped string // reason incremented in skipped_runs_total, "" for none
		wantSuccess bool   // last_success set
	}{
		{
			name:        "successful run on two apps",
			events:      runEvents("nightly", jobs.ResultSuccess, jobs.ResultSuccess, appA, appB),
			wantResult:  "success",
			wantSuccess: true,
		},
		{
			name:       "failed run",
			events:     runEvents("nightly", jobs.ResultFailed, jobs.ResultFailed, appA),
			wantResult: "failed",
		},
		{
			name:       "run waiting for a manual batch confirmation",
			events:     runEvents("nightly", jobs.ResultNeedsConfirmation, jobs.ResultNeedsConfirmation, appA),
			wantResult: "needs_confirmation",
		},
		{
			name: "run that started and ended skipped because every app was stopped",
			events: []jobs.Event{
				{Kind: jobs.EventRunStarted, Schedule: "nightly"},
				{Kind: jobs.EventRunEnded, Schedule: "nightly", Time: t0,
					Run: &jobs.RunOutcome{Result: jobs.ResultSkipped, Reason: jobs.ReasonAppStopped, Started: t0, Ended: t0}},
			},
			wantResult:  "skipped",
			wantSkipped: jobs.ReasonAppStopped,
		},
		{
			name: "run ended without an outcome, result in the event",
			events: []jobs.Event{
				{Kind: jobs.EventRunStarted, Schedule: "nightly"},
				{Kind: jobs.EventRunEnded, Schedule: "nightly", Time: t0, Result: jobs.ResultCancelled, Duration: time.Minute},
			},
			wantResult: "cancelled",
		},
		{
			name: "unknown result counts as failed",
			events: []jobs.Event{
				{Kind: jobs.EventRunEnded, Schedule: "nightly", Time: t0, Run: &jobs.RunOutcome{Result: "exploded"}},
			},
			wantResult: "failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTest(t, sched("nightly"))
			observeAll(m, tt.events)
			total := 0.0
			for _, r := range RunResults {
				v := mustValue(t, reg, "sae_scheduler_runs_total", map[string]string{"schedule": "nightly", "result": string(r)})
				total += v
				want := 0.0
				if string(r) == tt.wantResult {
					want = 1
				}
				if v != want {
					t.Errorf("runs_total{result=%q} = %v, want %v", r, v, want)
				}
			}
			if total != 1 {
				t.Errorf("sum(runs_total) = %v, want 1", total)
			}
			for _, r := range SkipReasons {
				want := 0.0
				if r == tt.wantSkipped {
					want = 1
				}
				if v := mustValue(t, reg, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "nightly", "reason": r}); v != want {
					t.Errorf("skipped_runs_total{reason=%q} = %v, want %v", r, v, want)
				}
			}
			if v := mustValue(t, reg, "sae_scheduler_run_in_progress", map[string]string{"schedule": "nightly"}); v != 0 {
				t.Errorf("run_in_progress after the run = %v, want 0", v)
			}
			gotSuccess := mustValue(t, reg, "sae_scheduler_last_success_timestamp_seconds", map[string]string{"schedule": "nightly"}) != 0
			if gotSuccess != tt.wantSuccess {
				t.Errorf("last_success set = %v, want %v", gotSuccess, tt.wantSuccess)
			}
			if v := mustValue(t, reg, "sae_scheduler_last_run_timestamp_seconds", map[string]string{"schedule": "nightly"}); v == 0 {
				t.Errorf("last_run_timestamp_seconds = 0, want the run's end")
			}
		})
	}
}

func TestObserveRecordsRunDetails(t *testing.T) {
	m, reg := newTest(t, sched("nightly"))
	evs := runEvents("nightly", jobs.ResultSuccess, jobs.ResultSuccess, appA, appB)

	// Mid-run: in progress.
	observeAll(m, evs[:len(evs)-1])
	if v := mustValue(t, reg, "sae_scheduler_run_in_progress", map[string]string{"schedule": "nightly"}); v != 1 {
		t.Errorf("run_in_progress during the run = %v, want 1", v)
	}
	m.Observe(evs[len(evs)-1])

	end := unix(t0.Add(20 * time.Minute))
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"last run is the run's end", "sae_scheduler_last_run_timestamp_seconds", map[string]string{"schedule": "nightly"}, end},
		{"last success is the run's end", "sae_scheduler_last_success_timestamp_seconds", map[string]string{"schedule": "nightly"}, end},
		{"one run duration observed", "sae_scheduler_run_duration_seconds", map[string]string{"schedule": "nightly"}, 1},
		{"one change-order wait per batch", "sae_scheduler_change_order_wait_seconds", nil, 2},
		{"one lock wait per app", "sae_scheduler_lock_wait_seconds", nil, 2},
		{"successful batch of app a", "sae_scheduler_batches_total", map[string]string{"schedule": "nightly", "app": appA.ID, "result": "success"}, 1},
		{"no failed batch of app a", "sae_scheduler_batches_total", map[string]string{"schedule": "nightly", "app": appA.ID, "result": "failed"}, 0},
		{"instances of the batch counted", "sae_scheduler_instances_restarted_total", map[string]string{"schedule": "nightly", "app": appB.ID}, 2},
		{"app success timestamp", "sae_scheduler_app_last_success_timestamp_seconds", map[string]string{"schedule": "nightly", "app": appA.ID}, end},
		{"app info names the app", "sae_scheduler_app_info", map[string]string{"app": appA.ID, "app_name": "orders", "namespace": "cn-hangzhou:prod"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustValue(t, reg, tt.metric, tt.labels); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}

func TestObserveFailedBatchRestartsNoInstance(t *testing.T) {
	m, reg := newTest(t, sched("nightly"))
	observeAll(m, runEvents("nightly", jobs.ResultFailed, jobs.ResultFailed, appA))
	if got := mustValue(t, reg, "sae_scheduler_instances_restarted_total", map[string]string{"app": appA.ID}); got != 0 {
		t.Errorf("instances_restarted_total after a failed batch = %v, want 0", got)
	}
	if got := mustValue(t, reg, "sae_scheduler_app_last_success_timestamp_seconds", map[string]string{"app": appA.ID}); got != 0 {
		t.Errorf("app_last_success after a failed app = %v, want 0", got)
	}
	if got := mustValue(t, reg, "sae_scheduler_batches_total", map[string]string{"app": appA.ID, "result": "failed"}); got != 1 {
		t.Errorf("batches_total{failed} = %v, want 1", got)
	}
}

func TestSkippedAddsToBothCounters(t *testing.T) {
	tests := []struct {
		name        string
		reason      string
		wantSkipped bool
	}{
		{name: "overlap with the previous run", reason: jobs.ReasonOverlap, wantSkipped: true},
		{name: "fire in a DST gap with dst: skip", reason: jobs.ReasonDSTGap, wantSkipped: true},
		{name: "daemon down past the deadline", reason: jobs.ReasonMissedDeadline, wantSkipped: true},
		{name: "unknown reason counts in runs_total only", reason: "cosmic_rays", wantSkipped: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTest(t, sched("nightly"))
			m.Skipped("nightly", tt.reason, t0)
			if got := mustValue(t, reg, "sae_scheduler_runs_total", map[string]string{"schedule": "nightly", "result": "skipped"}); got != 1 {
				t.Errorf("runs_total{skipped} = %v, want 1", got)
			}
			got, ok := value(t, reg, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "nightly", "reason": tt.reason})
			if tt.wantSkipped && got != 1 {
				t.Errorf("skipped_runs_total{reason=%q} = %v, want 1", tt.reason, got)
			}
			if !tt.wantSkipped && ok {
				t.Errorf("skipped_runs_total{reason=%q} exists, want no series for an unknown reason", tt.reason)
			}
			if got := mustValue(t, reg, "sae_scheduler_last_scheduled_timestamp_seconds", map[string]string{"schedule": "nightly"}); got != unix(t0) {
				t.Errorf("last_scheduled = %v, want %v", got, unix(t0))
			}
		})
	}
}

func TestLastScheduledNeverMovesBackwards(t *testing.T) {
	m, reg := newTest(t, sched("nightly"))
	m.Scheduled("nightly", t0)
	m.Skipped("nightly", jobs.ReasonMissedDeadline, t0.Add(-24*time.Hour))
	m.RestoreTimestamps("nightly", time.Time{}, time.Time{}, t0.Add(-48*time.Hour))
	if got := mustValue(t, reg, "sae_scheduler_last_scheduled_timestamp_seconds", map[string]string{"schedule": "nightly"}); got != unix(t0) {
		t.Errorf("last_scheduled = %v, want %v (the latest fire)", got, unix(t0))
	}
}

func TestScheduleGaugeSetters(t *testing.T) {
	m, reg := newTest(t, sched("nightly"))
	next, deadline := t0.Add(24*time.Hour), t0.Add(2*time.Hour)
	m.SetNextRun("nightly", next)
	m.SetRunDeadline("nightly", deadline)
	m.SetSuspended("nightly", true)
	m.RestoreTimestamps("nightly", t0.Add(-time.Hour), t0.Add(-2*time.Hour), t0.Add(-3*time.Hour))
	tests := []struct {
		metric string
		want   float64
	}{
		{"sae_scheduler_next_run_timestamp_seconds", unix(next)},
		{"sae_scheduler_run_deadline_timestamp_seconds", unix(deadline)},
		{"sae_scheduler_schedule_suspended", 1},
		{"sae_scheduler_last_run_timestamp_seconds", unix(t0.Add(-time.Hour))},
		{"sae_scheduler_last_success_timestamp_seconds", unix(t0.Add(-2 * time.Hour))},
		{"sae_scheduler_last_scheduled_timestamp_seconds", unix(t0.Add(-3 * time.Hour))},
	}
	for _, tt := range tests {
		if got := mustValue(t, reg, tt.metric, map[string]string{"schedule": "nightly"}); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.metric, got, tt.want)
		}
	}
	m.SetNextRun("nightly", time.Time{})
	if got := mustValue(t, reg, "sae_scheduler_next_run_timestamp_seconds", map[string]string{"schedule": "nightly"}); got != 0 {
		t.Errorf("next_run after SetNextRun(zero) = %v, want 0", got)
	}
}

func TestScheduleInfoCarriesEachSchedulesLabels(t *testing.T) {
	tests := []struct {
		name       string
		labels     map[string]string
		wantLabels map[string]string
	}{
		{
			name:       "no labels",
			wantLabels: map[string]string{"schedule": "s"},
		},
		{
			name:       "team and severity for routing",
			labels:     map[string]string{"team": "payments", "severity": "page"},
			wantLabels: map[string]string{"schedule": "s", "team": "payments", "severity": "page"},
		},
		{
			name:       "keys sanitised to label names",
			labels:     map[string]string{"cost-center": "42", "1tier": "gold", "app.kubernetes.io/part-of": "shop"},
			wantLabels: map[string]string{"schedule": "s", "cost_center": "42", "_1tier": "gold", "app_kubernetes_io_part_of": "shop"},
		},
		{
			name:       "reserved, clashing and empty labels dropped",
			labels:     map[string]string{"schedule": "other", "__name__": "x", "empty": "", "team": "ops"},
			wantLabels: map[string]string{"schedule": "s", "team": "ops"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, reg := newTest(t, ScheduleInfo{Name: "s", Labels: tt.labels})
			var got []map[string]string
			for _, s := range gather(t, reg) {
				if s.name == "sae_scheduler_schedule_info" {
					got = append(got, s.labels)
					if s.value != 1 {
						t.Errorf("schedule_info = %v, want 1", s.value)
					}
				}
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.wantLabels) {
				t.Errorf("schedule_info labels = %v, want [%v]", got, tt.wantLabels)
			}
		})
	}
}

func TestScheduleInfoDifferentLabelSetsGatherTogether(t *testing.T) {
	m, reg := newTest(t,
		ScheduleInfo{Name: "a", Labels: map[string]string{"team": "payments"}},
		ScheduleInfo{Name: "b", Labels: map[string]string{"severity": "ticket", "owner": "ops"}},
		ScheduleInfo{Name: "c"},
	)
	if n := count(t, reg, "sae_scheduler_schedule_info", nil); n != 3 {
		t.Errorf("schedule_info series = %d, want 3", n)
	}
	m.SetSchedules([]ScheduleInfo{{Name: "a", Labels: map[string]string{"team": "checkout"}}})
	if n := count(t, reg, "sae_scheduler_schedule_info", nil); n != 1 {
		t.Errorf("schedule_info series after reload = %d, want 1", n)
	}
	if _, ok := value(t, reg, "sae_scheduler_schedule_info", map[string]string{"schedule": "a", "team": "checkout"}); !ok {
		t.Errorf("schedule_info{a} after reload does not carry team=checkout")
	}
}

func TestSAERequestBoundsLabels(t *testing.T) {
	tests := []struct {
		name, action, code   string
		wantAction, wantCode string
	}{
		{name: "success", action: "RestartInstances", code: "200", wantAction: "RestartInstances", wantCode: "200"},
		{name: "throttled by the POP gateway", action: "DescribeChangeOrder", code: "Throttling.User", wantAction: "DescribeChangeOrder", wantCode: "Throttling.User"},
		{name: "transport failure", action: "ListChangeOrders", code: "transport", wantAction: "ListChangeOrders", wantCode: "transport"},
		{name: "unknown code becomes other", action: "RestartInstances", code: "Some.New.Error", wantAction: "RestartInstances", wantCode: "other"},
		{name: "empty code becomes other", action: "RestartInstances", code: "", wantAction: "RestartInstances", wantCode: "other"},
		{name: "unknown action becomes other", action: "DeleteApplication", code: "200", wantAction: "other", wantCode: "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTest(t)
			m.SAERequest(tt.action, tt.code, 250*time.Millisecond)
			if got := mustValue(t, reg, "sae_scheduler_sae_requests_total", map[string]string{"action": tt.wantAction, "code": tt.wantCode}); got != 1 {
				t.Errorf("sae_requests_total{%s,%s} = %v, want 1", tt.wantAction, tt.wantCode, got)
			}
			if got := mustValue(t, reg, "sae_scheduler_sae_request_duration_seconds", map[string]string{"action": tt.wantAction}); got != 1 {
				t.Errorf("sae_request_duration_seconds{%s} count = %v, want 1", tt.wantAction, got)
			}
		})
	}
}

func TestQuotaWaitAccumulatesSeconds(t *testing.T) {
	m, reg := newTest(t)
	m.QuotaWait(1500 * time.Millisecond)
	m.QuotaWait(-time.Second)
	m.QuotaWait(500 * time.Millisecond)
	if got := mustValue(t, reg, "sae_scheduler_sae_quota_wait_seconds_total", nil); got != 2 {
		t.Errorf("sae_quota_wait_seconds_total = %v, want 2", got)
	}
}

func TestConfigReloaded(t *testing.T) {
	m, reg := newTest(t)
	m.ConfigReloaded(true, t0)
	m.ConfigReloaded(false, t0.Add(time.Hour))
	if got := mustValue(t, reg, "sae_scheduler_config_last_reload_successful", nil); got != 0 {
		t.Errorf("config_last_reload_successful after a failed reload = %v, want 0", got)
	}
	if got := mustValue(t, reg, "sae_scheduler_config_last_reload_success_timestamp_seconds", nil); got != unix(t0) {
		t.Errorf("config_last_reload_success_timestamp_seconds = %v, want %v (the last success)", got, unix(t0))
	}
	m.ConfigReloaded(true, t0.Add(2*time.Hour))
	if got := mustValue(t, reg, "sae_scheduler_config_last_reload_successful", nil); got != 1 {
		t.Errorf("config_last_reload_successful after a good reload = %v, want 1", got)
	}
}

func TestLabelName(t *testing.T) {
	tests := []struct{ key, want string }{
		{"team", "team"},
		{"cost-center", "cost_center"},
		{"9lives", "_9lives"},
		{"a.b/c", "a_b_c"},
		{"équipe", "_quipe"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := LabelName(tt.key); got != tt.want {
			t.Errorf("LabelName(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// loadSchedules configures n schedules, each with labels, and runs each once
// on apps apps, so every kind of series exists.
func loadSchedules(tb testing.TB, n, apps int) (*Metrics, *prometheus.Registry) {
	tb.Helper()
	scheds := make([]ScheduleInfo, n)
	for i := range scheds {
		scheds[i] = ScheduleInfo{Name: fmt.Sprintf("schedule-%04d", i),
			Labels: map[string]string{"team": fmt.Sprintf("team-%d", i%17), "severity": "page"}}
	}
	m, reg := newTest(tb, scheds...)
	for i, s := range scheds {
		as := make([]jobs.App, apps)
		for j := range as {
			as[j] = jobs.App{ID: fmt.Sprintf("%08d-app-%d", i, j), Name: fmt.Sprintf("svc-%d-%d", i, j), NamespaceID: "cn-hangzhou:prod"}
		}
		observeAll(m, runEvents(s.Name, jobs.ResultSuccess, jobs.ResultSuccess, as...))
		m.SetNextRun(s.Name, t0.Add(24*time.Hour))
		m.Scheduled(s.Name, t0)
		m.SetRunDeadline(s.Name, t0.Add(2*time.Hour))
	}
	for _, a := range SAEActions {
		m.SAERequest(a, "200", 100*time.Millisecond)
		m.SAERequest(a, "Throttling.User", 100*time.Millisecond)
	}
	m.ConfigReloaded(true, t0)
	return m, reg
}
