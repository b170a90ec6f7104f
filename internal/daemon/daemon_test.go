package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/firing"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// every10s is one schedule firing every 10 seconds, with policy overrides.
func every10s(extra string) string {
	return `sae:
  region: cn-hangzhou
schedules:
  - name: web
    cron: "*/10 * * * * *"
    apps:
      - app_id: app-1
` + extra
}

func TestFireDecides(t *testing.T) {
	tests := []struct {
		name string
		// extra policy lines of the schedule (indented 4 spaces).
		extra string
		// busy: a run of the schedule is in progress when the fire comes.
		busy bool
		// at is when the fire is handled.
		at          time.Time
		wantRun     bool
		wantSkipped map[string]float64 // skipped_runs_total by reason
		wantNext    float64            // next_run_timestamp_seconds after the fire
	}{
		{
			name:     "an on-time fire starts a run",
			at:       t0.Add(10 * time.Second),
			wantRun:  true,
			wantNext: float64(t0.Add(20 * time.Second).Unix()),
		},
		{
			name:        "a fire while the previous run is in progress is skipped as overlap",
			busy:        true,
			at:          t0.Add(20 * time.Second),
			wantSkipped: map[string]float64{jobs.ReasonOverlap: 1},
			wantNext:    float64(t0.Add(30 * time.Second).Unix()),
		},
		{
			name:        "a suspended schedule's fire is skipped as suspended and has no next run",
			extra:       "    suspend: true\n",
			at:          t0.Add(10 * time.Second),
			wantSkipped: map[string]float64{jobs.ReasonSuspended: 1},
			wantNext:    0,
		},
		{
			name:        "a fire later than its starting deadline is skipped as missed_deadline",
			extra:       "    starting_deadline: 5s\n",
			at:          t0.Add(10*time.Second + 7*time.Second),
			wantSkipped: map[string]float64{jobs.ReasonMissedDeadline: 1},
			wantNext:    float64(t0.Add(20 * time.Second).Unix()),
		},
		{
			name:        "a fire past its window is skipped as missed_deadline, not started",
			extra:       "    window: 3s\n    starting_deadline: 1m\n",
			at:          t0.Add(10*time.Second + 5*time.Second),
			wantSkipped: map[string]float64{jobs.ReasonMissedDeadline: 1},
			wantNext:    float64(t0.Add(20 * time.Second).Unix()),
		},
		{
			name:        "fires that came due while nothing woke are recorded missed and the latest runs",
			at:          t0.Add(30*time.Second + 500*time.Millisecond),
			wantRun:     true,
			wantSkipped: map[string]float64{jobs.ReasonMissedDeadline: 2},
			wantNext:    float64(t0.Add(40 * time.Second).Unix()),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, every10s(tt.extra), harnessOpts{hold: true})
			if tt.busy {
				h.fireAt("web", t0.Add(10*time.Second))
				<-h.sae.started
			}
			h.fireAt("web", tt.at)
			if tt.wantRun {
				select {
				case <-h.sae.started:
				case <-time.After(10 * time.Second):
					t.Fatal("fire() started no run, want one")
				}
			}
			for _, reason := range []string{jobs.ReasonOverlap, jobs.ReasonSuspended, jobs.ReasonMissedDeadline, jobs.ReasonDSTGap} {
				got := h.metric(t, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "web", "reason": reason})
				if got != tt.wantSkipped[reason] {
					t.Errorf("skipped_runs_total{reason=%q} = %v, want %v", reason, got, tt.wantSkipped[reason])
				}
			}
			if got := h.metric(t, "sae_scheduler_next_run_timestamp_seconds", map[string]string{"schedule": "web"}); got != tt.wantNext {
				t.Errorf("next_run_timestamp_seconds = %v, want %v", got, tt.wantNext)
			}
			h.d.mu.Lock()
			running := h.d.running["web"] != nil
			h.d.mu.Unlock()
			if wantRunning := tt.wantRun || tt.busy; running != wantRunning {
				t.Errorf("run in progress = %v, want %v", running, wantRunning)
			}
		})
	}
}

func TestFireRecordsTheRunKeyAndDeadline(t *testing.T) {
	h := newHarness(t, every10s("    window: 1h\n"), harnessOpts{hold: true})
	h.fireAt("web", t0.Add(10*time.Second+20*time.Millisecond))
	<-h.sae.started
	h.d.mu.Lock()
	r := h.d.running["web"]
	h.d.mu.Unlock()
	if want := "web.20260301T030010Z"; r == nil || r.ID != want {
		t.Fatalf("running run = %+v, want ID %q", r, want)
	}
	if got, want := h.metric(t, "sae_scheduler_run_deadline_timestamp_seconds", map[string]string{"schedule": "web"}), float64(t0.Add(time.Hour+10*time.Second).Unix()); got != want {
		t.Errorf("run_deadline_timestamp_seconds = %v, want %v", got, want)
	}
	if got, want := h.metric(t, "sae_scheduler_last_scheduled_timestamp_seconds", map[string]string{"schedule": "web"}), float64(t0.Add(10*time.Second).Unix()); got != want {
		t.Errorf("last_scheduled_timestamp_seconds = %v, want %v", got, want)
	}
	// A second tick for the same instant (robfig woke twice) decides nothing.
	h.d.fire("web")
	if got := h.metric(t, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "web", "reason": jobs.ReasonOverlap}); got != 0 {
		t.Errorf("skipped_runs_total{overlap} after a repeated tick = %v, want 0", got)
	}
}

func TestFireSkipsASpringForwardGapUnderDSTSkip(t *testing.T) {
	// 02:30 does not exist in New York on 2026-03-08: the gap's fire comes at
	// the transition, 03:00 EDT = 07:00 UTC.
	yaml := `sae:
  region: cn-hangzhou
schedules:
  - name: nightly
    cron: "30 2 * * *"
    timezone: America/New_York
    dst: skip
    apps:
      - app_id: app-1
`
	h := newHarness(t, yaml, harnessOpts{start: time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC)})
	h.fireAt("nightly", time.Date(2026, 3, 8, 7, 0, 0, 300e6, time.UTC))
	if got := h.metric(t, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "nightly", "reason": jobs.ReasonDSTGap}); got != 1 {
		t.Errorf("skipped_runs_total{dst_gap} = %v, want 1", got)
	}
	if got := h.sae.calls; got != 0 {
		t.Errorf("SAE calls = %d, want 0 (no run)", got)
	}
}

func TestFireRunsToItsOutcome(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	h.fireAt("web", t0.Add(10*time.Second))
	out := h.waitOutcome(t)
	if out.Schedule != "web" || !out.ScheduledAt.Equal(t0.Add(10*time.Second)) || out.Result != jobs.ResultFailed {
		t.Errorf("outcome = %s %s %s, want web %s failed", out.Schedule, out.ScheduledAt, out.Result, t0.Add(10*time.Second))
	}
	h.d.wg.Wait()
	if got := h.metric(t, "sae_scheduler_runs_total", map[string]string{"schedule": "web", "result": "failed"}); got != 1 {
		t.Errorf("runs_total{failed} = %v, want 1", got)
	}
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if r := h.d.runs["web.20260301T030010Z"]; r == nil || r.Outcome == nil {
		t.Errorf("runs[web.20260301T030010Z] = %+v, want the ended run with its outcome", r)
	}
}

func TestCronScheduleNext(t *testing.T) {
	tests := []struct {
		name   string
		cron   string
		jitter time.Duration
		last   time.Time // st.last
		cursor time.Time // st.cursor
		t      time.Time // robfig's now
		want   time.Time
	}{
		{
			name: "hands the first fire after the last decision",
			cron: "*/10 * * * * *", last: t0, t: t0.Add(time.Second),
			want: t0.Add(10 * time.Second),
		},
		{
			name: "hands the fire after the one already handed",
			cron: "*/10 * * * * *", last: t0, cursor: t0.Add(10 * time.Second), t: t0.Add(10 * time.Second),
			want: t0.Add(20 * time.Second),
		},
		{
			name: "a due fire nobody decided is handed at once",
			cron: "*/10 * * * * *", last: t0, t: t0.Add(25 * time.Second),
			want: t0.Add(25 * time.Second),
		},
		{
			name: "jitter delays the start within its bound",
			cron: "0 * * * * *", jitter: 30 * time.Second, last: t0, t: t0.Add(time.Second),
			want: firing.Jitter(t0.Add(time.Minute), 30*time.Second, "web", 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := firing.NewSpec(tt.cron, time.UTC, "")
			if err != nil {
				t.Fatal(err)
			}
			st := &schedState{sched: jobs.Schedule{Name: "web", Jitter: tt.jitter}, spec: spec, last: tt.last, cursor: tt.cursor}
			got := cronSchedule{st: st}.Next(tt.t)
			if !got.Equal(tt.want) {
				t.Errorf("Next(%s) = %s, want %s", tt.t, got, tt.want)
			}
			if tt.jitter > 0 && (got.Before(t0.Add(time.Minute)) || !got.Before(t0.Add(time.Minute+tt.jitter))) {
				t.Errorf("Next(%s) = %s, want within [fire, fire+jitter)", tt.t, got)
			}
		})
	}
}

func TestReload(t *testing.T) {
	two := `sae:
  region: cn-hangzhou
schedules:
  - name: web
    cron: "*/10 * * * * *"
    apps:
      - app_id: app-1
  - name: api
    cron: "0 3 * * *"
    apps:
      - app_id: app-2
`
	tests := []struct {
		name      string
		content   string
		wantErr   string // substring of Reload's error; "" for success
		wantNames []string
		wantOK    float64 // config_last_reload_successful
	}{
		{
			name:      "a file that does not validate keeps the running schedules",
			content:   "sae:\n  region: cn-hangzhou\nschedules:\n  - name: web\n    cron: \"61 * * * *\"\n    apps:\n      - app_id: app-1\n",
			wantErr:   "schedules.yaml:5: schedules[0].cron: ",
			wantNames: []string{"web"},
			wantOK:    0,
		},
		{
			name:      "a missing file keeps the running schedules",
			content:   "",
			wantErr:   "read config",
			wantNames: []string{"web"},
			wantOK:    0,
		},
		{
			name:      "a valid file swaps the schedules",
			content:   two,
			wantNames: []string{"api", "web"},
			wantOK:    1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, every10s(""), harnessOpts{})
			if tt.content == "" {
				if err := os.Remove(h.path); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, h.path, tt.content)
			}
			err := h.d.Reload()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Reload() error = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Reload() error = %v, want one containing %q", err, tt.wantErr)
			}
			var names []string
			for _, v := range h.d.schedules(1) {
				names = append(names, v.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("schedules after Reload() = %v, want %v", names, tt.wantNames)
			}
			if got := h.metric(t, "sae_scheduler_config_last_reload_successful", nil); got != tt.wantOK {
				t.Errorf("config_last_reload_successful = %v, want %v", got, tt.wantOK)
			}
		})
	}
}

func TestReloadErrorIsConfigErrorsWithFileAndLine(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	writeFile(t, h.path, "sae:\n  region: cn-hangzhou\nschedules:\n  - name: web\n    cron: \"CRON_TZ=UTC 0 3 * * *\"\n    apps:\n      - app_id: app-1\n")
	err := h.d.Reload()
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 5 || errs[0].File != h.path {
		t.Fatalf("Reload() error = %v, want one config.Error at %s:5", err, h.path)
	}
	if !strings.Contains(h.logs.String(), "reload failed; keeping the running configuration") || !strings.Contains(h.logs.String(), h.path+":5:") {
		t.Errorf("logs = %q, want the reload failure with %s:5", h.logs.String(), h.path)
	}
}

func TestReloadKeepsTheDecisionStateOfUnchangedSchedules(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	h.fireAt("web", t0.Add(10*time.Second))
	h.waitOutcome(t)
	h.clk.Advance(5 * time.Second)
	if err := h.d.Reload(); err != nil {
		t.Fatalf("Reload() error = %v", err)
	}
	// The fire at +10s was decided before the reload: handling +10s again
	// must not run it twice.
	h.d.fire("web")
	h.d.wg.Wait()
	if got := h.metric(t, "sae_scheduler_runs_total", map[string]string{"schedule": "web", "result": "failed"}); got != 1 {
		t.Errorf("runs_total{failed} = %v, want 1 (one run for the fire at +10s)", got)
	}
}

func TestReloadLetsARunInProgressFinishUnderItsConfiguration(t *testing.T) {
	h := newHarness(t, every10s("    window: 1h\n"), harnessOpts{hold: true})
	h.fireAt("web", t0.Add(10*time.Second))
	<-h.sae.started
	writeFile(t, h.path, "sae:\n  region: cn-hangzhou\nschedules:\n  - name: api\n    cron: \"0 3 * * *\"\n    apps:\n      - app_id: app-2\n")
	if err := h.d.Reload(); err != nil {
		t.Fatalf("Reload() error = %v", err)
	}
	close(h.sae.release)
	out := h.waitOutcome(t)
	if out.Schedule != "web" || out.Result != jobs.ResultFailed {
		t.Errorf("outcome = %s %s, want the removed schedule's run to end (failed)", out.Schedule, out.Result)
	}
}

func TestShutdownDrains(t *testing.T) {
	h := newHarness(t, every10s("    window: 1h\n"), harnessOpts{hold: true, token: "s3cret"})
	h.d.ready.Store(true)
	h.fireAt("web", t0.Add(10*time.Second))
	<-h.sae.started
	done := make(chan struct{})
	go func() { h.d.Shutdown(); close(done) }()
	<-h.sae.cancelled // draining is set before runs are cancelled

	if code := get(t, h.d.Handler(), "/readyz").Code; code != 503 {
		t.Errorf("GET /readyz while draining = %d, want 503", code)
	}
	if _, err := h.d.Trigger("web"); !errors.Is(err, errRunning) && !errors.Is(err, errDraining) {
		t.Errorf("Trigger() while draining error = %v, want a refusal", err)
	}
	h.d.fire("web") // a late tick starts nothing
	select {
	case <-done:
		t.Fatal("Shutdown() returned while a change order was still being watched")
	default:
	}
	close(h.sae.release)
	<-done
	out := h.waitOutcome(t)
	if out.Result != jobs.ResultCancelled && out.Result != jobs.ResultFailed {
		t.Errorf("drained run result = %s, want cancelled or failed", out.Result)
	}
	if _, err := h.d.Trigger("web"); !errors.Is(err, errDraining) {
		t.Errorf("Trigger() after Shutdown error = %v, want errDraining", err)
	}
}

func TestRunSignals(t *testing.T) {
	tests := []struct {
		name     string
		second   os.Signal // sent once the drain began; nil: none
		wantCode int
	}{
		{name: "SIGTERM drains and exits 0", wantCode: 0},
		{name: "a second SIGINT while draining exits 1 at once", second: syscall.SIGINT, wantCode: 1},
		{name: "SIGHUP while draining is ignored", second: syscall.SIGHUP, wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, every10s("    window: 1h\n"), harnessOpts{hold: true})
			h.fireAt("web", t0.Add(10*time.Second))
			<-h.sae.started
			sigs := make(chan os.Signal, 2)
			code := make(chan int, 1)
			go func() { code <- h.d.Run(sigs) }()
			sigs <- syscall.SIGTERM
			<-h.sae.cancelled
			if tt.second != nil {
				sigs <- tt.second
			}
			if tt.wantCode == 0 {
				close(h.sae.release)
			}
			if got := <-code; got != tt.wantCode {
				t.Errorf("Run() = %d, want %d", got, tt.wantCode)
			}
		})
	}
}

func TestRunSIGHUPReloads(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	writeFile(t, h.path, every10s("")+"  - name: api\n    cron: \"0 3 * * *\"\n    apps:\n      - app_id: app-2\n")
	sigs := make(chan os.Signal, 2)
	sigs <- syscall.SIGHUP
	close(sigs)
	if got := h.d.Run(sigs); got != 0 {
		t.Errorf("Run() = %d, want 0", got)
	}
	if got := len(h.d.schedules(1)); got != 2 {
		t.Errorf("schedules after SIGHUP = %d, want 2", got)
	}
}

func TestPreflightLogsTheClockOffset(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	h.sae.err = &jobs.SAEError{Class: jobs.ClassAccount, Action: "DescribeApplication", Code: "InvalidTimeStamp.Expired",
		Message: "host clock off by 17m0s (ahead of SAE's Date 2026-03-01T03:00:00Z): Specified time stamp or date value is expired."}
	h.d.runPreflight(context.Background(), h.d.runner, h.d.cfg)
	logs := h.logs.String()
	for _, want := range []string{"the host clock is off", "host clock off by 17m0s", "target=app-1", "preflight done"} {
		if !strings.Contains(logs, want) {
			t.Errorf("preflight logs = %q, want %q", logs, want)
		}
	}
}

func TestPreflightSample(t *testing.T) {
	sel := func(ids ...string) []jobs.AppSelector {
		var out []jobs.AppSelector
		for _, id := range ids {
			out = append(out, jobs.AppSelector{AppID: id})
		}
		return out
	}
	tests := []struct {
		name      string
		scheds    []jobs.Schedule
		limit     int
		wantApps  []string
		wantTotal int
	}{
		{
			name:   "under the limit every distinct selector is read once",
			scheds: []jobs.Schedule{{Name: "a", Apps: sel("1", "2")}, {Name: "b", Apps: sel("2", "3")}},
			limit:  10, wantApps: []string{"1", "2", "3"}, wantTotal: 3,
		},
		{
			name:   "over the limit the first selectors are read",
			scheds: []jobs.Schedule{{Name: "a", Apps: sel("1", "2")}, {Name: "b", Apps: sel("3", "4")}},
			limit:  3, wantApps: []string{"1", "2", "3"}, wantTotal: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total := preflightSample(tt.scheds, tt.limit)
			var apps []string
			for _, s := range got {
				for _, a := range s.Apps {
					apps = append(apps, a.AppID)
				}
			}
			if strings.Join(apps, ",") != strings.Join(tt.wantApps, ",") || total != tt.wantTotal {
				t.Errorf("preflightSample() = %v, %d, want %v, %d", apps, total, tt.wantApps, tt.wantTotal)
			}
		})
	}
}
