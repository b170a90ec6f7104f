package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/firing"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runBin(t, 10*time.Second, binEnv(), "version")
	if r.code != exitOK || r.stdout != testVersion+"\n" {
		t.Errorf("scheduler version = %d %q, want 0 %q", r.code, r.stdout, testVersion+"\n")
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no command is a usage error", args: nil, wantCode: exitUsage, wantStderr: "usage: scheduler <command>"},
		{name: "an unknown command is a usage error", args: []string{"frobnicate"}, wantCode: exitUsage, wantStderr: `scheduler: unknown command "frobnicate"`},
		{name: "run without -config is a usage error", args: []string{"run"}, wantCode: exitUsage, wantStderr: "scheduler run: -config FILE is required"},
		{name: "run with a bad -log-format is a usage error", args: []string{"run", "-config", "testdata/valid.yaml", "-log-format", "xml"}, wantCode: exitUsage, wantStderr: `-log-format must be json or text, not "xml"`},
		{name: "run with an invalid file prints its errors and exits 2", args: []string{"run", "-config", "testdata/invalid-two-errors.yaml", "-listen", "127.0.0.1:0"}, wantCode: exitUsage, wantStderr: "testdata/invalid-two-errors.yaml:6: schedules[0].cron: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBin(t, 10*time.Second, binEnv(), tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("scheduler %v = %d, stderr %q; want %d with %q", tt.args, r.code, r.stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "a valid file is ok",
			args:       []string{"-config", "testdata/valid.yaml"},
			wantCode:   exitOK,
			wantStdout: "testdata/valid.yaml: ok (2 schedules)\n",
		},
		{
			name:     "every error of a bad file, one per line, exits 2",
			args:     []string{"testdata/invalid-two-errors.yaml"},
			wantCode: exitUsage,
			wantStderr: "testdata/invalid-two-errors.yaml:6: schedules[0].cron: a CRON_TZ=/TZ= prefix is not allowed: set the schedule's timezone instead\n" +
				"testdata/invalid-two-errors.yaml:9: schedules[0].windw: unknown key (did you mean \"window\"?)\n",
		},
		{
			name:       "files as arguments: the good one is ok, the bad one exits 2",
			args:       []string{"testdata/valid.yaml", "testdata/invalid-two-errors.yaml"},
			wantCode:   exitUsage,
			wantStdout: "testdata/valid.yaml: ok (2 schedules)\n",
			wantStderr: "testdata/invalid-two-errors.yaml:6: schedules[0].cron: a CRON_TZ=/TZ= prefix is not allowed: set the schedule's timezone instead\n" +
				"testdata/invalid-two-errors.yaml:9: schedules[0].windw: unknown key (did you mean \"window\"?)\n",
		},
		{
			name:       "a missing file exits 2",
			args:       []string{"testdata/missing.yaml"},
			wantCode:   exitUsage,
			wantStderr: "read config: open testdata/missing.yaml: no such file or directory\n",
		},
		{
			name:       "no file is a usage error",
			args:       nil,
			wantCode:   exitUsage,
			wantStderr: "usage: scheduler validate -config FILE | scheduler validate FILE...\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No credentials at all: validate never contacts SAE.
			r := runBin(t, 10*time.Second, []string{"PATH=/usr/bin:/bin"}, append([]string{"validate"}, tt.args...)...)
			if r.code != tt.wantCode || r.stdout != tt.wantStdout || r.stderr != tt.wantStderr {
				t.Errorf("scheduler validate %v = %d\nstdout %q\nstderr %q\nwant %d\nstdout %q\nstderr %q",
					tt.args, r.code, r.stdout, r.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

// wantNext renders what `scheduler next -n n` prints for testdata/valid.yaml at now.
func wantNext(t *testing.T, now time.Time, n int) string {
	t.Helper()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range []struct{ name, cron string }{{"nightly", "0 3 * * *"}, {"hourly", "@every 1h"}} {
		spec, err := firing.NewSpec(s.cron, shanghai, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range spec.NextN(now, n) {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", s.name, f.At.In(shanghai).Format(time.RFC3339), f.At.UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

func TestNext(t *testing.T) {
	t.Parallel()
	before := time.Now()
	r := runBin(t, 10*time.Second, []string{"PATH=/usr/bin:/bin"}, "next", "-config", "testdata/valid.yaml", "-n", "2")
	after := time.Now()
	// The binary read the clock between before and after; an hour boundary
	// in between changes the answer, so either is right.
	if r.code != exitOK || (r.stdout != wantNext(t, before, 2) && r.stdout != wantNext(t, after, 2)) {
		t.Errorf("scheduler next -n 2 = %d\n%s\nwant 0\n%s", r.code, r.stdout, wantNext(t, before, 2))
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Errorf("line %q has %d fields, want NAME<TAB>local<TAB>UTC", line, len(f))
			continue
		}
		local, err1 := time.Parse(time.RFC3339, f[1])
		utc, err2 := time.Parse(time.RFC3339, f[2])
		if err1 != nil || err2 != nil || !local.Equal(utc) || !strings.HasSuffix(f[1], "+08:00") || !strings.HasSuffix(f[2], "Z") {
			t.Errorf("line %q: want one instant as local +08:00 and as UTC Z", line)
		}
	}

	r = runBin(t, 10*time.Second, []string{"PATH=/usr/bin:/bin"}, "next", "-config", "testdata/valid.yaml", "-n", "1", "-json")
	var fires []struct {
		Schedule string    `json:"schedule"`
		Local    time.Time `json:"local"`
		UTC      time.Time `json:"utc"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &fires); err != nil || r.code != exitOK {
		t.Fatalf("scheduler next -json = %d %q (%v), want 0 and JSON", r.code, r.stdout, err)
	}
	if len(fires) != 2 || fires[0].Schedule != "nightly" || fires[1].Schedule != "hourly" || !fires[0].Local.Equal(fires[0].UTC) {
		t.Errorf("scheduler next -json = %+v, want nightly then hourly, local == utc", fires)
	}

	if r := runBin(t, 10*time.Second, nil, "next", "-config", "testdata/valid.yaml", "-n", "0"); r.code != exitUsage {
		t.Errorf("scheduler next -n 0 = %d, want %d", r.code, exitUsage)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, app("app-hc", 1, time.Second))
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: web
    cron: "0 3 * * *"
    apps:
      - app_id: app-hc
`)
	d := startDaemon(t, cfg, binEnv())
	if r := runBin(t, 10*time.Second, binEnv(), "healthcheck", "-url", d.url+"/healthz"); r.code != exitOK {
		t.Errorf("scheduler healthcheck against a running daemon = %d %q, want 0", r.code, r.stderr)
	}
	d.stop(t)
	if r := runBin(t, 10*time.Second, binEnv(), "healthcheck", "-url", d.url+"/healthz", "-timeout", "1s"); r.code != exitFailure || !strings.HasPrefix(r.stderr, "healthcheck: ") {
		t.Errorf("scheduler healthcheck against a stopped daemon = %d %q, want 1 with the error", r.code, r.stderr)
	}
}

func TestPlanAndTrigger(t *testing.T) {
	t.Parallel()
	fail := app("app-fail", 2, time.Second)
	fail.Faults = []emulator.Fault{{Kind: emulator.FaultCOFail}}
	e := startEmulator(t, app("app-web", 2, time.Second), fail)
	cfg := schedulesFile(t, t.TempDir(), e.url, `  - name: web
    cron: "0 3 * * *"
    apps:
      - app_id: app-web
  - name: broken
    cron: "0 3 * * *"
    apps:
      - app_id: app-fail
`)
	r := runBin(t, 30*time.Second, binEnv(), "plan", "-config", cfg, "-schedule", "web")
	if r.code != exitOK || !strings.Contains(r.stdout, "schedule web at ") || !strings.Contains(r.stdout, "app app-web (app-web): 2 of 2 instances in 2 batches of up to 1") {
		t.Errorf("scheduler plan = %d\n%s%s\nwant 0 and the plan of 2 batches", r.code, r.stdout, r.stderr)
	}
	if got := e.srv.Calls("RestartInstances"); got != 0 {
		t.Errorf("RestartInstances calls after plan = %d, want 0", got)
	}
	if r := runBin(t, 30*time.Second, binEnv(), "plan", "-config", cfg, "-schedule", "nope"); r.code != exitUsage || !strings.Contains(r.stderr, `no schedule "nope"`) {
		t.Errorf("scheduler plan of an unknown schedule = %d %q, want 2", r.code, r.stderr)
	}

	r = runBin(t, 60*time.Second, binEnv(), "trigger", "-config", cfg, "-schedule", "web", "-poll-initial", "500ms")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "run web (scheduled ") || !strings.Contains(r.stdout, "): success in ") ||
		!strings.Contains(r.stdout, "app-web (app-web): success; restarted 2 in 2 batches") {
		t.Errorf("scheduler trigger = %d\nstdout %s\nstderr %s\nwant 0 and a success summary", r.code, r.stdout, r.stderr)
	}
	if got := e.srv.Restarts("app-web"); len(got) != 2 {
		t.Errorf("emulator restarts of app-web = %v, want both instances restarted", got)
	}

	r = runBin(t, 60*time.Second, binEnv(), "trigger", "-config", cfg, "-schedule", "broken", "-poll-initial", "500ms")
	if r.code != exitFailure || !strings.Contains(r.stdout, "): failed (change_order_failed)") {
		t.Errorf("scheduler trigger of a failing app = %d\nstdout %s\nwant 1 and a failed summary", r.code, r.stdout)
	}

	// Without credentials the SDK cannot sign: the run fails plainly.
	r = runBin(t, 60*time.Second, []string{"PATH=/usr/bin:/bin", "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true", "HOME=" + t.TempDir()},
		"trigger", "-config", cfg, "-schedule", "web")
	if r.code != exitFailure || strings.Contains(r.stdout+r.stderr, testAccessKeySecret) {
		t.Errorf("scheduler trigger without credentials = %d\n%s%s\nwant 1", r.code, r.stdout, r.stderr)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	env := append(binEnv(), "HOME="+t.TempDir(), "TMPDIR="+tmp)
	r := runBin(t, 60*time.Second, env, "demo", "-for", "20s", "-listen", "127.0.0.1:0")
	if r.code != exitOK {
		t.Errorf("scheduler demo -for 20s = %d, want 0\nstderr %s", r.code, r.stderr)
	}
	for _, want := range []string{"sae-scheduler demo", "run demo-web (scheduled ", "): success in "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("scheduler demo stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(tmp, "*")); len(matches) != 0 {
		t.Errorf("demo left files in its temporary directory: %v", matches)
	}
}
