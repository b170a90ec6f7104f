package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// TestPrometheusScrapesTheDaemonAndFiresTheRunFailedAlert runs the real
// Prometheus server with the shipped alert rules against the real daemon:
// one schedule rolls an app that restarts fine, the other an app whose
// change orders fail. Through Prometheus' HTTP API, runs_total{success} of
// the first increases and SAESchedulerRunFailed fires for the second only.
func TestPrometheusScrapesTheDaemonAndFiresTheRunFailedAlert(t *testing.T) {
	promBin := prometheusBinary(t)
	t.Parallel()

	bad := app("app-bad", 1, time.Second)
	// Count 0: every change order of app-bad fails, at its first batch's end.
	bad.Faults = []emulator.Fault{{Kind: emulator.FaultCOFail}}
	e := startEmulator(t, app("app-good", 1, time.Second), bad)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "schedules.yaml")
	content := fmt.Sprintf(`sae:
  region: cn-hangzhou
  endpoint: %s
  quota_per_minute: 60
  quota_burst: 60
state:
  path: %s
defaults:
  batch: {size: 1, pause: 1s}
  lock_wait: 30s
  batch_timeout: 30s
  window: 1m
schedules:
  - name: good
    cron: "*/3 * * * * *"
    labels: {team: web}
    apps:
      - app_id: app-good
  - name: bad
    cron: "*/3 * * * * *"
    apps:
      - app_id: app-bad
`, e.url, filepath.Join(dir, "scheduler.db"))
	if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, cfg, binEnv())
	p := startPrometheus(t, promBin, strings.TrimPrefix(d.url, "http://"), "../../deploy/prometheus/alerts.yaml")

	waitFor(t, 20*time.Second, `up{job="sae-scheduler"} == 1 in Prometheus`, func() bool {
		r := p.query(t, `up{job="sae-scheduler"} == 1`)
		return len(r) == 1
	})

	// increase() needs two scraped samples that differ: a success seen by
	// Prometheus after the series was scraped at a lower value.
	waitFor(t, 30*time.Second, `increase(runs_total{schedule="good",result="success"}) > 0 in Prometheus`, func() bool {
		return len(p.query(t, `increase(sae_scheduler_runs_total{job="sae-scheduler",schedule="good",result="success"}[1m]) > 0`)) == 1
	})
	if r := p.query(t, `sae_scheduler_runs_total{schedule="good",result="success"}`); len(r) != 1 || r[0].value() < 1 {
		t.Errorf(`runs_total{schedule="good",result="success"} in Prometheus = %v, want one series >= 1`, r)
	}

	var firing promAlert
	waitFor(t, 30*time.Second, "SAESchedulerRunFailed firing for schedule bad", func() bool {
		for _, a := range p.alerts(t) {
			if a.Labels["alertname"] == "SAESchedulerRunFailed" && a.Labels["schedule"] == "bad" && a.State == "firing" {
				firing = a
				return true
			}
		}
		return false
	})
	if got, want := firing.Labels["severity"], "critical"; got != want {
		t.Errorf("SAESchedulerRunFailed severity = %q, want %q", got, want)
	}
	if got := firing.Labels["result"]; got != "failed" && got != "partial" {
		t.Errorf("SAESchedulerRunFailed result = %q, want failed or partial", got)
	}
	// The other schedule's runs all succeeded: no failure alert, not even pending.
	for _, a := range p.alerts(t) {
		if a.Labels["alertname"] == "SAESchedulerRunFailed" && a.Labels["schedule"] != "bad" {
			t.Errorf("SAESchedulerRunFailed %s for schedule %q, want it for bad only", a.State, a.Labels["schedule"])
		}
		if a.Labels["alertname"] == "SAESchedulerDown" || a.Labels["alertname"] == "SAESchedulerAbsent" {
			t.Errorf("%s is %s while the daemon is scraped", a.Labels["alertname"], a.State)
		}
	}
	if r := p.query(t, `sae_scheduler_runs_total{schedule="good",result=~"failed|partial|deadline_exceeded"} > 0`); len(r) != 0 {
		t.Errorf("failure runs of schedule good in Prometheus = %v, want none", r)
	}
	if r := p.query(t, `sae_scheduler_schedule_info{schedule="good",team="web"}`); len(r) != 1 {
		t.Errorf(`schedule_info{schedule="good",team="web"} in Prometheus = %v, want one series`, r)
	}

	p.stop()
	d.stop(t)
}
