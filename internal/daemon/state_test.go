package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/firing"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

// dailyAt2 is one schedule firing every day at 02:00 UTC, with extra
// schedule lines (indented 4 spaces).
func dailyAt2(extra string) string {
	return `sae:
  region: cn-hangzhou
schedules:
  - name: web
    cron: "0 2 * * *"
    apps:
      - app_id: app-1
` + extra
}

// history writes a run of schedule web at scheduledAt that ended with
// result, as an earlier process of the daemon would have.
func history(t *testing.T, s journal.Store, scheduledAt time.Time, result jobs.Result) {
	t.Helper()
	ctx := context.Background()
	id, created, err := s.BeginRun(ctx, journal.RunKey{Schedule: "web", ScheduledAt: scheduledAt},
		journal.RunRecord{Started: scheduledAt, Deadline: scheduledAt.Add(2 * time.Hour)})
	if err != nil || !created {
		t.Fatalf("BeginRun() = %d, %v, %v; want a new run", id, created, err)
	}
	out := jobs.RunOutcome{Schedule: "web", ScheduledAt: scheduledAt, Started: scheduledAt, Ended: scheduledAt.Add(10 * time.Minute), Result: result}
	if err := s.EndRun(ctx, id, out); err != nil {
		t.Fatalf("EndRun() error = %v", err)
	}
}

// fires returns the recorded fires of web after after, oldest first, as
// "RFC3339 reason".
func fires(t *testing.T, s journal.Store, after time.Time) []string {
	t.Helper()
	runs, err := s.Runs(context.Background(), journal.RunFilter{Schedule: "web"})
	if err != nil {
		t.Fatalf("Runs() error = %v", err)
	}
	var out []string
	for _, r := range runs {
		if r.Fire && r.ScheduledAt.After(after) {
			out = append(out, r.ScheduledAt.UTC().Format(time.RFC3339)+" "+r.Reason)
		}
	}
	slices.Sort(out)
	return out
}

// drained waits for the runs recover started and returns their outcomes.
func (h *harness) drained() []jobs.RunOutcome {
	h.d.wg.Wait()
	var outs []jobs.RunOutcome
	for {
		select {
		case o := <-h.outs:
			outs = append(outs, o)
		default:
			return outs
		}
	}
}

func TestMissedRunsAtStart(t *testing.T) {
	day := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) }
	feb := func(d int) time.Time { return time.Date(2026, 2, d, 2, 0, 0, 0, time.UTC) }
	tests := []struct {
		name string
		yaml string
		// last is the journal's last scheduled fire (a successful run); zero: no history.
		last time.Time
		// start is when the daemon starts again.
		start time.Time
		// wantRun is the fire caught up (zero: none).
		wantRun time.Time
		// wantFires are the fires recorded as missed or skipped, "RFC3339 reason".
		wantFires []string
		// wantFireCount, when set, checks only how many fires were recorded.
		wantFireCount int
	}{
		{
			name:    "down 1 h across a fire: it runs once, 30 min late, within its starting deadline",
			yaml:    dailyAt2(""),
			last:    feb(28),
			start:   day(1, 2, 30),
			wantRun: day(1, 2, 0),
		},
		{
			name:      "down 1 h with starting_deadline 10m: the fire is recorded missed_deadline, not run",
			yaml:      dailyAt2("    starting_deadline: 10m\n"),
			last:      feb(28),
			start:     day(1, 2, 30),
			wantFires: []string{"2026-03-01T02:00:00Z missed_deadline"},
		},
		{
			name:    "down 3 days: the latest fire runs once, the two before are recorded missed",
			yaml:    dailyAt2(""),
			last:    feb(26),
			start:   day(1, 2, 30),
			wantRun: day(1, 2, 0),
			wantFires: []string{
				"2026-02-27T02:00:00Z missed_deadline",
				"2026-02-28T02:00:00Z missed_deadline",
			},
		},
		{
			name:  "down 3 days, back after the window: all three are recorded missed, none runs",
			yaml:  dailyAt2(""),
			last:  feb(26),
			start: day(1, 5, 0),
			wantFires: []string{
				"2026-02-27T02:00:00Z missed_deadline",
				"2026-02-28T02:00:00Z missed_deadline",
				"2026-03-01T02:00:00Z missed_deadline",
			},
		},
		{
			name:          "down 3 days on a 10-second cron: one catch-up run, at most 100 fires recorded, no storm",
			yaml:          every10s(""),
			last:          t0.Add(-72 * time.Hour),
			start:         t0.Add(5 * time.Second),
			wantRun:       t0,
			wantFireCount: firing.MaxMissed,
		},
		{
			name:  "suspended while down: the fires are recorded suspended, none runs",
			yaml:  dailyAt2("    suspend: true\n"),
			last:  feb(27),
			start: day(1, 2, 30),
			wantFires: []string{
				"2026-02-28T02:00:00Z suspended",
				"2026-03-01T02:00:00Z suspended",
			},
		},
		{
			name:  "back before the next fire: nothing is due",
			yaml:  dailyAt2(""),
			last:  day(1, 2, 0),
			start: day(1, 3, 0),
		},
		{
			name:  "no history (a first start): nothing is caught up",
			yaml:  dailyAt2(""),
			start: day(1, 2, 30),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.yaml, harnessOpts{start: tt.start})
			if !tt.last.IsZero() {
				history(t, h.d.store, tt.last, jobs.ResultSuccess)
			}
			if err := h.d.recover(); err != nil {
				t.Fatalf("recover() error = %v", err)
			}
			outs := h.drained()
			var ran []time.Time
			for _, o := range outs {
				ran = append(ran, o.ScheduledAt)
			}
			switch {
			case tt.wantRun.IsZero() && len(ran) > 0:
				t.Errorf("runs at start = %v, want none", ran)
			case !tt.wantRun.IsZero() && (len(ran) != 1 || !ran[0].Equal(tt.wantRun)):
				t.Errorf("runs at start = %v, want one for %s", ran, tt.wantRun)
			}
			got := fires(t, h.d.store, tt.last)
			if tt.wantFireCount > 0 {
				if len(got) != tt.wantFireCount {
					t.Errorf("recorded fires = %d, want %d", len(got), tt.wantFireCount)
				}
			} else if !slices.Equal(got, tt.wantFires) {
				t.Errorf("recorded fires = %q, want %q", got, tt.wantFires)
			}
			// A second start decides nothing again: the journal has every decision.
			if err := h.d.recover(); err != nil {
				t.Fatalf("second recover() error = %v", err)
			}
			if again := h.drained(); len(again) > 0 {
				t.Errorf("runs at a second start = %d, want 0", len(again))
			}
		})
	}
}

func TestRestartRestoresTheAlertingTimestamps(t *testing.T) {
	tests := []struct {
		name            string
		runs            []jobs.Result // at Feb 26, 27, 28 02:00 in order
		wantLastRun     time.Time
		wantLastSuccess time.Time
	}{
		{
			name:            "a failure after a success stays visible: last run is after last success",
			runs:            []jobs.Result{jobs.ResultSuccess, jobs.ResultFailed},
			wantLastRun:     time.Date(2026, 2, 27, 2, 10, 0, 0, time.UTC),
			wantLastSuccess: time.Date(2026, 2, 26, 2, 10, 0, 0, time.UTC),
		},
		{
			name:        "a schedule that never succeeded has no last success",
			runs:        []jobs.Result{jobs.ResultFailed, jobs.ResultPartial},
			wantLastRun: time.Date(2026, 2, 27, 2, 10, 0, 0, time.UTC),
		},
		{
			name:            "the latest success is restored",
			runs:            []jobs.Result{jobs.ResultFailed, jobs.ResultSuccess, jobs.ResultSuccess},
			wantLastRun:     time.Date(2026, 2, 28, 2, 10, 0, 0, time.UTC),
			wantLastSuccess: time.Date(2026, 2, 28, 2, 10, 0, 0, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Started on Mar 1 at 01:00: the last due fire is Feb 28's (missed
			// when the history stops before it; last_scheduled shows it).
			h := newHarness(t, dailyAt2(""), harnessOpts{start: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)})
			last := time.Date(2026, 2, 28, 2, 0, 0, 0, time.UTC)
			for i, r := range tt.runs {
				history(t, h.d.store, time.Date(2026, 2, 26+i, 2, 0, 0, 0, time.UTC), r)
			}
			if err := h.d.recover(); err != nil {
				t.Fatalf("recover() error = %v", err)
			}
			unix := func(t time.Time) float64 {
				if t.IsZero() {
					return 0
				}
				return float64(t.Unix())
			}
			for _, c := range []struct {
				metric string
				want   time.Time
			}{
				{"sae_scheduler_last_run_timestamp_seconds", tt.wantLastRun},
				{"sae_scheduler_last_success_timestamp_seconds", tt.wantLastSuccess},
				{"sae_scheduler_last_scheduled_timestamp_seconds", last},
			} {
				if got := h.metric(t, c.metric, map[string]string{"schedule": "web"}); got != unix(c.want) {
					t.Errorf("%s = %v, want %v (%s)", c.metric, got, unix(c.want), c.want)
				}
			}
		})
	}
}

// openRun writes the journal of a run killed mid-rollout: it began at
// scheduledAt with deadline, app-1's plan is i-1, i-2, i-3; batch 1 (i-1)
// ended successfully, batch 2 (i-2) was submitted as co-2.
func openRun(t *testing.T, s journal.Store, scheduledAt, deadline time.Time) int64 {
	t.Helper()
	ctx := context.Background()
	id, _, err := s.BeginRun(ctx, journal.RunKey{Schedule: "web", ScheduledAt: scheduledAt}, journal.RunRecord{
		Plan:    []jobs.AppPlan{{App: jobs.App{ID: "app-1"}, Total: 3, Instances: []string{"i-1", "i-2", "i-3"}}},
		Started: scheduledAt, Deadline: deadline,
	})
	if err != nil {
		t.Fatalf("BeginRun() error = %v", err)
	}
	steps := []error{
		s.PlanBatch(ctx, id, "app-1", 1, []string{"i-1"}, scheduledAt.Add(time.Second)),
		s.RecordChangeOrder(ctx, id, "app-1", 1, "co-1"),
		s.EndBatch(ctx, id, "app-1", 1, jobs.ResultSuccess, "", scheduledAt.Add(time.Minute)),
		s.PlanBatch(ctx, id, "app-1", 2, []string{"i-2"}, scheduledAt.Add(2*time.Minute)),
		s.RecordChangeOrder(ctx, id, "app-1", 2, "co-2"),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("journal step %d error = %v", i+1, err)
		}
	}
	return id
}

func TestOpenRunsAtStart(t *testing.T) {
	// The run began at 02:00 (daily cron); the daemon restarts at 03:00.
	at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	start := at.Add(time.Hour)
	tests := []struct {
		name     string
		yaml     string
		deadline time.Time
		// wantResumed: the run resumes under its row (SAE is called); else it
		// is closed as interrupted without any SAE call.
		wantResumed       bool
		wantNotRestarted  []string
		wantMessageSubstr string
	}{
		{
			name:        "window still open: the run resumes under its journal row",
			yaml:        dailyAt2(""),
			deadline:    at.Add(2 * time.Hour),
			wantResumed: true,
		},
		{
			name:              "window ended: closed as interrupted, listing what was left",
			yaml:              dailyAt2("    window: 30m\n"),
			deadline:          at.Add(30 * time.Minute),
			wantNotRestarted:  []string{"i-3"},
			wantMessageSubstr: "change orders in flight at the crash: co-2",
		},
		{
			name: "schedule no longer configured: closed as interrupted",
			yaml: strings.Replace(dailyAt2(""), "name: web", "name: api", 1),
			// Window open, but there is no schedule to resume it with.
			deadline:          at.Add(2 * time.Hour),
			wantNotRestarted:  []string{"i-3"},
			wantMessageSubstr: "change orders in flight at the crash: co-2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.yaml, harnessOpts{start: start})
			id := openRun(t, h.d.store, at, tt.deadline)
			if err := h.d.recover(); err != nil {
				t.Fatalf("recover() error = %v", err)
			}
			outs := h.drained()
			if len(outs) != 1 {
				t.Fatalf("outcomes at start = %d, want 1", len(outs))
			}
			out := outs[0]
			if !out.ScheduledAt.Equal(at) || !out.Started.Equal(at) {
				t.Errorf("outcome scheduled %s started %s, want both %s (one run, its outage included)", out.ScheduledAt, out.Started, at)
			}
			open, err := h.d.store.OpenRuns(context.Background())
			if err != nil || len(open) != 0 {
				t.Errorf("OpenRuns() = %d runs, %v; want none", len(open), err)
			}
			runs, err := h.d.store.Runs(context.Background(), journal.RunFilter{})
			if err != nil || len(runs) != 1 || runs[0].ID != id {
				t.Fatalf("Runs() = %+v, %v; want only run %d (no second row)", runs, err, id)
			}
			if runs[0].Result != out.Result {
				t.Errorf("journal result = %q, want the outcome's %q", runs[0].Result, out.Result)
			}
			if got := h.sae.calls > 0; got != tt.wantResumed {
				t.Errorf("SAE called = %v, want %v", got, tt.wantResumed)
			}
			if tt.wantResumed {
				if out.Result == jobs.ResultInterrupted {
					t.Errorf("resumed outcome = %s, want the resumed run's own result", out.Result)
				}
				return
			}
			if out.Result != jobs.ResultInterrupted {
				t.Fatalf("outcome = %s, want interrupted", out.Result)
			}
			if len(out.Apps) != 1 {
				t.Fatalf("outcome apps = %+v, want app-1", out.Apps)
			}
			a := out.Apps[0]
			if !slices.Equal(a.Restarted, []string{"i-1"}) || !slices.Equal(a.NotRestarted, tt.wantNotRestarted) ||
				!strings.Contains(a.Message, tt.wantMessageSubstr) {
				t.Errorf("app-1 = restarted %v, not restarted %v, message %q; want [i-1], %v, %q",
					a.Restarted, a.NotRestarted, a.Message, tt.wantNotRestarted, tt.wantMessageSubstr)
			}
			if _, configured := h.d.cfg.Schedule("web"); configured {
				if got := h.metric(t, "sae_scheduler_runs_total", map[string]string{"schedule": "web", "result": "interrupted"}); got != 1 {
					t.Errorf("runs_total{interrupted} = %v, want 1", got)
				}
			}
		})
	}
}

func TestFireIsJournaledBeforeTheFirstSAECall(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{hold: true})
	at := t0.Add(10 * time.Second)
	h.fireAt("web", at)
	<-h.sae.started // the run's first SAE call, held
	open, err := h.d.store.OpenRuns(context.Background())
	if err != nil || len(open) != 1 || open[0].Key.Schedule != "web" || !open[0].Key.ScheduledAt.Equal(at) {
		t.Fatalf("OpenRuns() during the first SAE call = %+v, %v; want the run web@%s", open, err, at)
	}
	if want := at.Add(jobs.DefaultPolicy().Window); !open[0].Record.Deadline.Equal(want) {
		t.Errorf("recorded deadline = %s, want %s", open[0].Record.Deadline, want)
	}
	close(h.sae.release)
	out := h.waitOutcome(t)
	h.d.wg.Wait()
	runs, err := h.d.store.Runs(context.Background(), journal.RunFilter{Schedule: "web"})
	if err != nil || len(runs) != 1 || runs[0].Result != out.Result || runs[0].ID != open[0].ID {
		t.Errorf("Runs() after the run = %+v, %v; want run %d ended %s", runs, err, open[0].ID, out.Result)
	}
}

func TestAFireTheJournalHasAlreadyStartsNoSecondRun(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	at := t0.Add(10 * time.Second)
	// An earlier process began this fire's run (and, say, died before robfig's
	// state caught up).
	if _, _, err := h.d.store.BeginRun(context.Background(), journal.RunKey{Schedule: "web", ScheduledAt: at}, journal.RunRecord{Started: at}); err != nil {
		t.Fatal(err)
	}
	h.fireAt("web", at)
	out := h.waitOutcome(t)
	if out.Result != jobs.ResultSkipped || out.Reason != jobs.ReasonOverlap {
		t.Errorf("outcome = %s (%s), want skipped (overlap)", out.Result, out.Reason)
	}
	if h.sae.calls != 0 {
		t.Errorf("SAE calls = %d, want 0", h.sae.calls)
	}
	if got := h.metric(t, "sae_scheduler_runs_total", map[string]string{"schedule": "web", "result": "skipped"}); got != 1 {
		t.Errorf("runs_total{skipped} = %v, want 1", got)
	}
}

func TestSkippedFiresAreJournaled(t *testing.T) {
	h := newHarness(t, every10s("    suspend: true\n"), harnessOpts{})
	h.fireAt("web", t0.Add(10*time.Second))
	h.fireAt("web", t0.Add(20*time.Second))
	want := []string{"2026-03-01T03:00:10Z suspended", "2026-03-01T03:00:20Z suspended"}
	if got := fires(t, h.d.store, time.Time{}); !slices.Equal(got, want) {
		t.Errorf("recorded fires = %q, want %q", got, want)
	}
}

func TestStateFileThatIsNotADatabase(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{name: "garbage", content: []byte("this is not a database, it is a shopping list\n"), want: "is not a SQLite database or is corrupt"},
		{name: "a SQLite header and nothing else", content: append([]byte("SQLite format 3\x00"), make([]byte, 100)...), want: "state: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "scheduler.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(t.TempDir(), "schedules.yaml")
			writeFile(t, cfg, every10s(""))
			_, err := New(Options{ConfigPath: cfg, StatePath: path, Listen: "127.0.0.1:0"})
			if err == nil || !strings.HasPrefix(err.Error(), "state: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %v, want one starting %q containing %q", err, "state: ", tt.want)
			}
		})
	}
}

func TestStateFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scheduler.db")
	h := newHarness(t, every10s(""), harnessOpts{statePath: path})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("state file mode = %v, want 0600", got)
	}
	h.d.Close()
}

func TestPruneKeepsTheRetention(t *testing.T) {
	// retention 48h; now is 2026-03-01 03:00.
	h := newHarness(t, dailyAt2("")+"state:\n  retention: 48h\n", harnessOpts{})
	for _, d := range []int{25, 26, 27, 28} {
		history(t, h.d.store, time.Date(2026, 2, d, 2, 0, 0, 0, time.UTC), jobs.ResultSuccess)
	}
	n, err := h.d.prune(context.Background())
	// Runs that ended (02:10) before Feb 27 03:00 go: those of Feb 25, 26 and 27.
	if err != nil || n != 3 {
		t.Errorf("prune() = %d, %v; want 3, nil", n, err)
	}
	runs, err := h.d.store.Runs(context.Background(), journal.RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].ScheduledAt.Day() != 28 {
		t.Errorf("Runs() after prune = %+v, %v; want Feb 28's only", runs, err)
	}
	// The alerting timestamps survive.
	times, err := h.d.store.LastTimestamps(context.Background())
	if err != nil || times["web"].LastSuccess.IsZero() {
		t.Errorf("LastTimestamps() after prune = %v, %v; want web's last success", times, err)
	}
}

func TestDurationsLiveAsLongAsTheDaemon(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	before := h.d.runner.Durations
	if before == nil {
		t.Fatal("Runner.Durations = nil, want the daemon's")
	}
	writeFile(t, h.path, every10s("    window: 1h\n"))
	if err := h.d.Reload(); err != nil {
		t.Fatalf("Reload() error = %v", err)
	}
	if h.d.runner.Durations != before {
		t.Error("Runner.Durations after a reload is another value, want the same for the daemon's lifetime")
	}
}

func TestFailpointReachesTheRunner(t *testing.T) {
	var names []string
	h := newHarness(t, every10s(""), harnessOpts{})
	h.d.opts.Failpoint = func(name string) { names = append(names, name) }
	writeFile(t, h.path, every10s(""))
	if err := h.d.Reload(); err != nil {
		t.Fatal(err)
	}
	h.d.runner.Failpoint("probe")
	if !slices.Equal(names, []string{"probe"}) {
		t.Errorf("failpoint calls = %v, want [probe]", names)
	}
}

func TestGETRuns(t *testing.T) {
	h := newHarness(t, dailyAt2(""), harnessOpts{})
	for _, d := range []int{26, 27, 28} {
		history(t, h.d.store, time.Date(2026, 2, d, 2, 0, 0, 0, time.UTC), jobs.ResultSuccess)
	}
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantRuns []string // scheduled instants, newest first
	}{
		{name: "every run, newest first", path: "/api/v1/runs", wantCode: http.StatusOK,
			wantRuns: []string{"2026-02-28T02:00:00Z", "2026-02-27T02:00:00Z", "2026-02-26T02:00:00Z"}},
		{name: "n limits the count", path: "/api/v1/runs?n=1", wantCode: http.StatusOK, wantRuns: []string{"2026-02-28T02:00:00Z"}},
		{name: "an unknown schedule has no runs", path: "/api/v1/runs?schedule=api", wantCode: http.StatusOK, wantRuns: []string{}},
		{name: "n must be a positive integer", path: "/api/v1/runs?n=0", wantCode: http.StatusBadRequest},
		{name: "n is bounded", path: fmt.Sprintf("/api/v1/runs?n=%d", MaxHistory+1), wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, h.d.Handler(), tt.path)
			if rec.Code != tt.wantCode {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, rec.Code, rec.Body.String(), tt.wantCode)
			}
			if tt.wantCode != http.StatusOK {
				return
			}
			var runs []journal.RunSummary
			if err := json.Unmarshal(rec.Body.Bytes(), &runs); err != nil {
				t.Fatalf("GET %s body %s: %v", tt.path, rec.Body.String(), err)
			}
			got := []string{}
			for _, r := range runs {
				got = append(got, r.ScheduledAt.UTC().Format(time.RFC3339))
			}
			if !slices.Equal(got, tt.wantRuns) {
				t.Errorf("GET %s runs = %v, want %v", tt.path, got, tt.wantRuns)
			}
		})
	}
}
