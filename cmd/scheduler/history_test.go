package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
)

// runsAPI reads GET /api/v1/runs of a running daemon.
func (p *daemonProc) runsAPI(t *testing.T, query string) []journal.RunSummary {
	t.Helper()
	code, body := httpDo(t, http.MethodGet, p.url+"/api/v1/runs"+query, "")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/runs%s = %d %s, want 200", query, code, body)
	}
	var runs []journal.RunSummary
	if err := json.Unmarshal([]byte(body), &runs); err != nil {
		t.Fatalf("GET /api/v1/runs%s: %v in %s", query, err, body)
	}
	return runs
}

func TestHistoryRunsAPIAndRestart(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-hist", 2, 500*time.Millisecond))
	dir := t.TempDir()
	state := filepath.Join(dir, "scheduler.db")
	cfg := schedulesFile(t, dir, e.url, `  - name: web
    cron: "*/2 * * * * *"
    apps:
      - app_id: app-hist
`)
	d := startDaemon(t, cfg, binEnv(), "-state", state)
	d.waitMetric(t, 30*time.Second, "sae_scheduler_runs_total", map[string]string{"schedule": "web", "result": "success"}, 1)

	// The API serves the journal: the successful run with its restarts and
	// the change orders the emulator saw.
	var cos []string
	for _, c := range e.srv.ChangeOrders("app-hist") {
		cos = append(cos, c.ID)
	}
	var ok *journal.RunSummary
	runs := d.runsAPI(t, "?schedule=web&n=50")
	for i, r := range runs {
		if r.Result == jobs.ResultSuccess {
			ok = &runs[i]
		}
	}
	if ok == nil {
		t.Fatalf("GET /api/v1/runs = %+v, want a successful run", runs)
	}
	if ok.Restarted != 2 || ok.Apps != 1 || len(ok.ChangeOrders) != 2 || ok.Duration <= 0 {
		t.Errorf("successful run = %+v, want 1 app, 2 restarted, 2 change orders, a duration", *ok)
	}
	for _, co := range ok.ChangeOrders {
		if !slices.Contains(cos, co) {
			t.Errorf("run's change order %s is not one the emulator created (%v)", co, cos)
		}
	}
	if other := d.runsAPI(t, "?schedule=nope"); len(other) != 0 {
		t.Errorf("GET /api/v1/runs?schedule=nope = %+v, want []", other)
	}
	d.stop(t)

	// history reads the same journal, without SAE or credentials.
	noCreds := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	r := runBin(t, 10*time.Second, noCreds, "history", "-config", cfg, "-state", state, "-n", "50")
	if r.code != exitOK {
		t.Fatalf("scheduler history = %d, stderr %q; want 0", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !strings.HasPrefix(lines[0], "SCHEDULED (UTC)") || !strings.Contains(lines[0], "CHANGE ORDERS") {
		t.Errorf("history header = %q, want the column names", lines[0])
	}
	want := ok.ScheduledAt.UTC().Format(time.RFC3339Nano)
	var line string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, want+" ") {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 8 || f[1] != "web" || f[2] != "success" || f[6] != "2" || f[7] != strings.Join(ok.ChangeOrders, ",") {
		t.Errorf("history line for %s = %q, want web success ... 2 %s", want, line, strings.Join(ok.ChangeOrders, ","))
	}
	rj := runBin(t, 10*time.Second, noCreds, "history", "-config", cfg, "-state", state, "-schedule", "web", "-n", "1", "-json")
	var one []journal.RunSummary
	if err := json.Unmarshal([]byte(rj.stdout), &one); rj.code != exitOK || err != nil || len(one) != 1 || one[0].Schedule != "web" {
		t.Errorf("scheduler history -json -n 1 = %d %q (%v), want one run of web", rj.code, rj.stdout, err)
	}

	// A restart restores last_success from the journal (and fires nothing:
	// the schedule is suspended now).
	all := runBin(t, 10*time.Second, noCreds, "history", "-config", cfg, "-state", state, "-n", "1000", "-json")
	var hist []journal.RunSummary
	if err := json.Unmarshal([]byte(all.stdout), &hist); err != nil {
		t.Fatalf("history -json: %v", err)
	}
	var lastSuccess, lastRun time.Time
	for _, h := range hist {
		if h.Fire || h.Ended.IsZero() {
			continue
		}
		if h.Ended.After(lastRun) {
			lastRun = h.Ended
		}
		if h.Result == jobs.ResultSuccess && h.Ended.After(lastSuccess) {
			lastSuccess = h.Ended
		}
	}
	writeSchedules(t, cfg, e.url, `  - name: web
    cron: "*/2 * * * * *"
    suspend: true
    apps:
      - app_id: app-hist
`)
	d2 := startDaemon(t, cfg, binEnv(), "-state", state)
	for _, c := range []struct {
		metric string
		want   time.Time
	}{
		{"sae_scheduler_last_success_timestamp_seconds", lastSuccess},
		{"sae_scheduler_last_run_timestamp_seconds", lastRun},
	} {
		got, found := d2.metric(t, c.metric, map[string]string{"schedule": "web"})
		if want := float64(c.want.UnixNano()) / 1e9; !found || math.Abs(got-want) > 1e-3 {
			t.Errorf("%s after a restart = %v, want %v (%s)", c.metric, got, want, c.want)
		}
	}
	d2.stop(t)
}

// fillJournal writes n runs with sizeable plans, so the file spans many pages.
func fillJournal(t *testing.T, path string, n int) {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	for i := range n {
		var ids []string
		for j := range 20 {
			ids = append(ids, fmt.Sprintf("app-%03d-instance-%02d-%s", i, j, strings.Repeat("x", 20)))
		}
		rec := journal.RunRecord{Plan: []jobs.AppPlan{{App: jobs.App{ID: fmt.Sprintf("app-%03d", i)}, Instances: ids}}, Started: at}
		if _, _, err := s.BeginRun(ctx, journal.RunKey{Schedule: "web", ScheduledAt: at.Add(time.Duration(i) * time.Hour)}, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptStateFileIsAClearErrorExit2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{name: "a journal truncated to half", write: func(t *testing.T, path string) {
			fillJournal(t, path, 300)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() < 64<<10 {
				t.Fatalf("journal is %d bytes, want a multi-page file", fi.Size())
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "garbage", write: func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "scheduler.db")
			tt.write(t, state)
			cfg := schedulesFile(t, dir, "http://127.0.0.1:1", `  - name: web
    cron: "0 2 * * *"
    apps:
      - app_id: app-1
`)
			want := "state file " + state + " is not a SQLite database or is corrupt: "
			for _, args := range [][]string{
				{"run", "-config", cfg, "-state", state, "-listen", "127.0.0.1:0"},
				{"history", "-config", cfg, "-state", state},
			} {
				r := runBin(t, 20*time.Second, binEnv(), args...)
				if r.code != exitUsage || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "panic") {
					t.Errorf("scheduler %s = %d, stderr %q; want 2 with %q", args[0], r.code, r.stderr, want)
				}
			}
		})
	}
}

func TestHistoryWithoutAStateFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := schedulesFile(t, dir, "http://127.0.0.1:1", `  - name: web
    cron: "0 2 * * *"
    apps:
      - app_id: app-1
`)
	state := filepath.Join(dir, "missing.db")
	r := runBin(t, 10*time.Second, binEnv(), "history", "-config", cfg, "-state", state)
	if r.code != exitUsage || !strings.Contains(r.stderr, "no state file at "+state) {
		t.Errorf("scheduler history = %d, stderr %q; want 2 with %q", r.code, r.stderr, "no state file at "+state)
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("history created %s, want no file written", state)
	}
}

func TestParseFailpoint(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		wantName string
		wantN    int
		wantErr  string
	}{
		{name: "unset arms nothing", value: "", wantName: "", wantN: 0},
		{name: "a name alone is its first time", value: "after-submit", wantName: jobs.FailpointAfterSubmit, wantN: 1},
		{name: "a name and a count", value: "co-wait:3", wantName: jobs.FailpointChangeOrderWait, wantN: 3},
		{name: "an unknown name is an error", value: "after-lunch", wantErr: `unknown failpoint "after-lunch"`},
		{name: "a zero count is an error", value: "health-gate:0", wantErr: "must be a positive integer"},
		{name: "a non-numeric count is an error", value: "health-gate:x", wantErr: "must be a positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, n, err := parseFailpoint(tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseFailpoint(%q) error = %v, want %q", tt.value, err, tt.wantErr)
				}
				return
			}
			if err != nil || name != tt.wantName || n != tt.wantN {
				t.Errorf("parseFailpoint(%q) = %q, %d, %v; want %q, %d, nil", tt.value, name, n, err, tt.wantName, tt.wantN)
			}
		})
	}
}

func TestFailpointExitsAtTheNthTime(t *testing.T) {
	var out bytes.Buffer
	var exited []int
	fp := failpoint(jobs.FailpointBeforeSubmit, 2, &out, func(code int) { exited = append(exited, code) })
	for _, p := range []string{jobs.FailpointBeforeSubmit, jobs.FailpointAfterSubmit, jobs.FailpointBeforeSubmit, jobs.FailpointBeforeSubmit} {
		fp(p)
	}
	if !slices.Equal(exited, []int{exitFailpoint}) {
		t.Errorf("exits = %v, want one exit %d at the second before-submit", exited, exitFailpoint)
	}
	if want := "failpoint before-submit reached (time 2): exiting with status 3\n"; out.String() != want {
		t.Errorf("failpoint output = %q, want %q", out.String(), want)
	}
}
