package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunFiresRolloutsAgainstTheEmulator(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-run", 2, time.Second))
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: web
    cron: "*/3 * * * * *"
    apps:
      - app_id: app-run
`)
	d := startDaemon(t, cfg, binEnv())
	if code, body := httpDo(t, http.MethodGet, d.url+"/readyz", ""); code != http.StatusOK {
		t.Errorf("GET /readyz = %d %s, want 200", code, body)
	}
	d.waitMetric(t, 30*time.Second, "sae_scheduler_runs_total", map[string]string{"schedule": "web", "result": "success"}, 1)

	restarts := e.srv.Restarts("app-run")
	if len(restarts) != 2 {
		t.Errorf("emulator restarts = %v, want both instances restarted", restarts)
	}
	if v, _ := d.metric(t, "sae_scheduler_instances_restarted_total", map[string]string{"schedule": "web", "app": "app-run"}); v < 2 {
		t.Errorf("instances_restarted_total = %v, want >= 2", v)
	}
	if v, _ := d.metric(t, "sae_scheduler_sae_requests_total", map[string]string{"action": "RestartInstances", "code": "200"}); v < 2 {
		t.Errorf("sae_requests_total{RestartInstances,200} = %v, want >= 2", v)
	}
	if o := overlapping(e.srv.ChangeOrders("app-run")); len(o) > 0 {
		t.Errorf("overlapping change orders on app-run: %v", o)
	}
	// The JSON logs carry the listening address and the run.
	d.waitLog(t, time.Second, `"msg":"listening"`, `"addr":"127.0.0.1:`)
	d.waitLog(t, time.Second, `"msg":"run ended"`, `"result":"success"`)

	var scheds []struct {
		Name string      `json:"name"`
		Next []time.Time `json:"next"`
	}
	code, body := httpDo(t, http.MethodGet, d.url+"/api/v1/schedules?n=3", "")
	if err := json.Unmarshal([]byte(body), &scheds); err != nil || code != http.StatusOK || len(scheds) != 1 || len(scheds[0].Next) != 3 {
		t.Errorf("GET /api/v1/schedules = %d %s, want web with 3 next fires", code, body)
	} else if gap := scheds[0].Next[1].Sub(scheds[0].Next[0]); gap != 3*time.Second {
		t.Errorf("next fires %v are %s apart, want 3s", scheds[0].Next, gap)
	}
	d.stop(t)
}

func TestSIGHUPWithABrokenFileKeepsTheOldSchedulesFiring(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-hup", 1, time.Second))
	dir := t.TempDir()
	// Suspended: each fire is decided and recorded (a skip), cheaply.
	cfg := schedulesFile(t, dir, e.url, `  - name: web
    cron: "* * * * * *"
    suspend: true
    apps:
      - app_id: app-hup
`)
	d := startDaemon(t, cfg, binEnv())
	d.waitMetric(t, 10*time.Second, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "web", "reason": "suspended"}, 1)

	writeSchedules(t, cfg, e.url, `  - name: web
    cron: "* * * * * *"
    suspend: maybe
    apps:
      - app_id: app-hup
`)
	d.signal(t, syscall.SIGHUP)
	line := d.waitLog(t, 10*time.Second, "reload failed; keeping the running configuration")
	if !strings.Contains(line, cfg+":14: schedules[0].suspend: ") {
		t.Errorf("reload failure log = %s, want the error at %s:14", line, cfg)
	}
	if v, _ := d.metric(t, "sae_scheduler_config_last_reload_successful", nil); v != 0 {
		t.Errorf("config_last_reload_successful = %v, want 0", v)
	}
	before, _ := d.metric(t, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "web", "reason": "suspended"})
	d.waitMetric(t, 10*time.Second, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "web", "reason": "suspended"}, before+2)
	if code, _ := httpDo(t, http.MethodGet, d.url+"/readyz", ""); code != http.StatusOK {
		t.Errorf("GET /readyz after a bad reload = %d, want 200", code)
	}
	d.stop(t)
}

func TestHTTPReload(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-reload", 1, time.Second))
	dir := t.TempDir()
	cfg := schedulesFile(t, dir, e.url, `  - name: web
    cron: "0 3 * * *"
    apps:
      - app_id: app-reload
`)
	d := startDaemon(t, cfg, binEnv("SCHEDULER_API_TOKEN=tok-123"))

	writeSchedules(t, cfg, e.url, `  - name: web
    cron: "0 3 * * *"
    apps:
      - app_id: app-reload
  - name: api
    cron: "0 4 * * *"
    aps:
      - app_id: app-reload
`)
	code, body := httpDo(t, http.MethodPost, d.url+"/-/reload", "tok-123")
	if code != http.StatusBadRequest || !strings.Contains(body, cfg+":18: schedules[1].aps: unknown key") {
		t.Errorf("POST /-/reload of a broken file = %d %s, want 400 with %s:18", code, body, cfg)
	}
	if code, _ := httpDo(t, http.MethodPost, d.url+"/-/reload", ""); code != http.StatusUnauthorized {
		t.Errorf("POST /-/reload without the token = %d, want 401", code)
	}
	if code, _ := httpDo(t, http.MethodPost, d.url+"/-/reload", "tok-12"); code != http.StatusUnauthorized {
		t.Errorf("POST /-/reload with a wrong token = %d, want 401", code)
	}

	writeSchedules(t, cfg, e.url, `  - name: web
    cron: "0 3 * * *"
    apps:
      - app_id: app-reload
  - name: api
    cron: "0 4 * * *"
    apps:
      - app_id: app-reload
`)
	if code, body := httpDo(t, http.MethodPost, d.url+"/-/reload", "tok-123"); code != http.StatusOK {
		t.Errorf("POST /-/reload of a fixed file = %d %s, want 200", code, body)
	}
	code, body = httpDo(t, http.MethodGet, d.url+"/api/v1/schedules", "")
	if code != http.StatusOK || !strings.Contains(body, `"name": "api"`) || !strings.Contains(body, `"name": "web"`) {
		t.Errorf("GET /api/v1/schedules after the reload = %d %s, want api and web", code, body)
	}
	if v, ok := d.metric(t, "sae_scheduler_runs_total", map[string]string{"schedule": "api", "result": "success"}); !ok || v != 0 {
		t.Errorf("runs_total{api,success} = %v (exists %v), want 0 created by the reload", v, ok)
	}
	d.stop(t)
}

func TestSIGTERMMidBatchWatchesTheChangeOrderToItsEnd(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-term", 3, 3*time.Second))
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: web
    cron: "*/2 * * * * *"
    apps:
      - app_id: app-term
`)
	d := startDaemon(t, cfg, binEnv())
	waitFor(t, 20*time.Second, "the first change order", func() bool { return len(e.srv.ChangeOrders("app-term")) > 0 })
	signalled := time.Now()
	d.signal(t, syscall.SIGTERM)
	// Draining: not ready any more, still serving until the change order
	// ended. The signal arrives asynchronously: poll until it is handled.
	waitFor(t, 5*time.Second, "GET /readyz to answer 503 while draining", func() bool {
		code, _ := httpDo(t, http.MethodGet, d.url+"/readyz", "")
		return code == http.StatusServiceUnavailable
	})
	if code := d.wait(t, 40*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	exited := time.Now()
	cos := e.srv.ChangeOrders("app-term")
	if len(cos) != 1 {
		t.Errorf("change orders = %d, want 1 (no batch after the signal)", len(cos))
	}
	for _, co := range cos {
		if co.Created.After(signalled) {
			t.Errorf("change order %s created at %s, after the signal at %s", co.ID, co.Created, signalled)
		}
		if co.Ended.IsZero() || co.Status != 2 {
			t.Errorf("change order %s: status %d ended %s, want it watched to its successful end", co.ID, co.Status, co.Ended)
		}
		if co.Ended.After(exited) {
			t.Errorf("change order %s ended at %s, after the daemon exited at %s", co.ID, co.Ended, exited)
		}
	}
	d.waitLog(t, time.Second, `"msg":"shutting down: no new run or batch; watching in-flight change orders"`)
	d.waitLog(t, time.Second, `"msg":"cancelled: watching the change order to its end"`)
}

func TestASecondSignalExitsAtOnceWith1(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-twice", 2, 10*time.Second))
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: web
    cron: "*/2 * * * * *"
    apps:
      - app_id: app-twice
`)
	d := startDaemon(t, cfg, binEnv())
	waitFor(t, 20*time.Second, "the first change order", func() bool { return len(e.srv.ChangeOrders("app-twice")) > 0 })
	d.signal(t, syscall.SIGTERM)
	d.waitLog(t, 5*time.Second, `"msg":"shutting down`)
	d.signal(t, syscall.SIGINT)
	if code := d.wait(t, 5*time.Second); code != 1 {
		t.Errorf("exit code after a second signal = %d, want 1", code)
	}
}

func TestOverlappingFireIsSkipped(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-overlap", 1, 3*time.Second))
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: web
    cron: "* * * * * *"
    apps:
      - app_id: app-overlap
`)
	d := startDaemon(t, cfg, binEnv())
	d.waitMetric(t, 20*time.Second, "sae_scheduler_skipped_runs_total", map[string]string{"schedule": "web", "reason": "overlap"}, 1)
	d.waitLog(t, time.Second, `"msg":"fire skipped"`, `"reason":"overlap"`)
	d.stop(t)
	if o := overlapping(e.srv.ChangeOrders("app-overlap")); len(o) > 0 {
		t.Errorf("overlapping change orders: %v", o)
	}
}

func TestTwoSchedulesOnOneAppNeverRestartItAtOnce(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-shared", 2, time.Second))
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: alpha
    cron: "*/5 * * * * *"
    apps:
      - app_id: app-shared
  - name: beta
    cron: "*/5 * * * * *"
    apps:
      - app_id: app-shared
`)
	d := startDaemon(t, cfg, binEnv())
	d.waitMetric(t, 40*time.Second, "sae_scheduler_runs_total", map[string]string{"schedule": "alpha", "result": "success"}, 1)
	d.waitMetric(t, 40*time.Second, "sae_scheduler_runs_total", map[string]string{"schedule": "beta", "result": "success"}, 1)
	d.stop(t)
	cos := e.srv.ChangeOrders("app-shared")
	if len(cos) < 4 {
		t.Errorf("change orders = %d, want >= 4 (2 runs of 2 batches)", len(cos))
	}
	if o := overlapping(cos); len(o) > 0 {
		t.Errorf("overlapping change orders on the shared app: %v", o)
	}
	for _, ev := range e.srv.Events() {
		if ev.Action == "RestartInstances" && ev.Code == "Application.ChangerOrderRunning" {
			t.Errorf("RestartInstances refused with the lock at %s: the two runs met at SAE", ev.Time)
		}
	}
}

func TestTriggerThroughTheDaemon(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-api", 2, time.Second))
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: web
    cron: "0 3 1 1 *"
    apps:
      - app_id: app-api
`)
	d := startDaemon(t, cfg, binEnv("SCHEDULER_API_TOKEN=tok-456"))
	tests := []struct {
		name       string
		token      string
		schedule   string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "without the token the daemon refuses", token: "", schedule: "web", wantCode: exitFailure, wantStderr: "scheduler trigger: daemon answered 401: missing or wrong bearer token"},
		{name: "with a wrong token the daemon refuses", token: "nope", schedule: "web", wantCode: exitFailure, wantStderr: "daemon answered 401"},
		{name: "an unknown schedule is a usage error", token: "tok-456", schedule: "nope", wantCode: exitUsage, wantStderr: "daemon answered 404: no such schedule"},
		{name: "with the token the daemon runs it and the summary follows", token: "tok-456", schedule: "web", wantCode: exitOK,
			wantStdout: "app-api (app-api): success; restarted 2 in 2 batches", wantStderr: "started by the daemon; following it"},
	}
	for _, tt := range tests {
		// Sequential: they share one daemon.
		r := runBin(t, 60*time.Second, binEnv("SCHEDULER_API_TOKEN="+tt.token), "trigger", "-daemon", d.url, "-schedule", tt.schedule)
		if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantStdout) || !strings.Contains(r.stderr, tt.wantStderr) {
			t.Errorf("%s: scheduler trigger -daemon = %d\nstdout %s\nstderr %s\nwant %d with %q / %q", tt.name, r.code, r.stdout, r.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
		}
	}
	if v, _ := d.metric(t, "sae_scheduler_runs_total", map[string]string{"schedule": "web", "result": "success"}); v != 1 {
		t.Errorf("runs_total{web,success} = %v, want 1 (the triggered run)", v)
	}
	d.stop(t)

	// A daemon without SCHEDULER_API_TOKEN refuses every mutation.
	open := startDaemon(t, cfg, binEnv())
	r := runBin(t, 30*time.Second, binEnv("SCHEDULER_API_TOKEN=tok-456"), "trigger", "-daemon", open.url, "-schedule", "web")
	if r.code != exitFailure || !strings.Contains(r.stderr, "daemon answered 403: mutations are disabled: set SCHEDULER_API_TOKEN") {
		t.Errorf("scheduler trigger -daemon against a daemon without a token = %d %q, want 1 and 403", r.code, r.stderr)
	}
	for _, path := range []string{"/-/reload", "/api/v1/schedules/web/trigger", "/api/v1/runs/x/cancel"} {
		if code, _ := httpDo(t, http.MethodPost, open.url+path, "tok-456"); code != http.StatusForbidden {
			t.Errorf("POST %s on a daemon without a token = %d, want 403", path, code)
		}
	}
	open.stop(t)
	if n := len(e.srv.ChangeOrders("app-api")); n != 2 {
		t.Errorf("change orders = %d, want 2 (only the authorised trigger ran)", n)
	}
}
