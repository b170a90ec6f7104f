package main

// The crash test of the journal issue: kill the real binary at many points
// of rollouts against the emulator, restart it on the same journal, and
// check from the emulator's own record (not from what the daemon says) that
// every instance was restarted exactly once per run, that no batch was
// submitted twice, and that each run completed — or, restarted after its
// window, was closed as interrupted.
//
// A kill -9 at a random instant almost never lands in the microseconds
// between a submit and its record, so the binary's named failpoints
// (SCHEDULER_FAILPOINT=NAME:N) make it exit exactly there; randomized
// SIGKILLs come on top. Time is scaled down: restarts take 300 ms in the
// emulator, the daemon polls from 100 ms, batches pause 200 ms. Trials run
// in parallel, each with its own emulator (in this process, so it outlives
// every daemon it serves) and its own journal.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// The rollout of every trial: app A (3 instances) then app B (2), one
// instance per batch: 5 batches, so each per-batch failpoint is met 5 times
// and between-batches 3 times (2 in A, 1 in B).
const (
	crashAppA      = "app-crash-a"
	crashAppB      = "app-crash-b"
	crashBatches   = 5
	crashBetween   = 3
	crashWorkers   = 8 // trials at once: mostly waiting on emulated restarts
	crashSchedule  = "crash"
	crashRestart   = 300 * time.Millisecond
	crashWindow    = time.Minute
	expiringWindow = 4 * time.Second
)

// crashPoint is one armed failpoint: exit at the n-th time point is reached.
type crashPoint struct {
	point string
	n     int
}

func (c crashPoint) String() string { return fmt.Sprintf("%s:%d", c.point, c.n) }

// crashTrial is one run of the schedule and the crashes it goes through.
type crashTrial struct {
	name string
	// points are armed in successive starts of the daemon, one each.
	points []crashPoint
	// kills is how many randomized SIGKILLs follow the failpoint starts.
	kills int
	// expire restarts the daemon only after the run's window ended: the run
	// must be closed as interrupted, not resumed.
	expire bool
	// downAcross kills the daemon before the fire and restarts it after:
	// the missed fire must run once, caught up.
	downAcross bool
	// replace: the emulator gives restarted instances new IDs.
	replace bool
}

// crashFigures are the figures the test prints.
type crashFigures struct {
	mu                                                  sync.Mutex
	trials, failpointExits, sigkills                    int
	perPoint                                            map[string]int
	notReached                                          int
	resumed, reattached, foundUnrecorded, neverSubmited int
	caughtUp, interrupted, completed                    int
	doubleRestarts, doubleSubmits                       int
}

func crashTrials() []crashTrial {
	var trials []crashTrial
	add := func(tr crashTrial) {
		tr.replace = len(trials)%2 == 1
		var parts []string
		for _, p := range tr.points {
			parts = append(parts, p.String())
		}
		if tr.kills > 0 {
			parts = append(parts, fmt.Sprintf("%d random SIGKILLs", tr.kills))
		}
		tr.name = strings.Join(parts, " then ")
		if tr.expire {
			tr.name += ", restarted after the window"
		}
		if tr.downAcross {
			tr.name = "SIGKILL before the fire, back after it"
		}
		if tr.replace {
			tr.name += ", replacing IDs"
		}
		trials = append(trials, tr)
	}
	// Each failpoint at each batch it can meet (5 trials per point).
	for _, p := range jobs.Failpoints {
		ns := []int{1, 2, 3, 4, 5}
		if p == jobs.FailpointBetweenBatches {
			ns = []int{1, 2, 3, 1, 3}
		}
		for _, n := range ns {
			add(crashTrial{points: []crashPoint{{p, n}}})
		}
	}
	// A crash, then another one while the run resumes: the first at batches
	// 1-3 leaves batches to submit, so every second point is met.
	firsts := []crashPoint{
		{jobs.FailpointBeforeSubmit, 2}, {jobs.FailpointAfterSubmit, 1}, {jobs.FailpointChangeOrderWait, 3},
		{jobs.FailpointHealthGate, 2}, {jobs.FailpointBetweenBatches, 1}, {jobs.FailpointAfterSubmit, 3},
		{jobs.FailpointChangeOrderWait, 1}, {jobs.FailpointBeforeSubmit, 3}, {jobs.FailpointHealthGate, 1},
		{jobs.FailpointBetweenBatches, 2},
	}
	seconds := []string{jobs.FailpointAfterSubmit, jobs.FailpointChangeOrderWait, jobs.FailpointHealthGate,
		jobs.FailpointBeforeSubmit, jobs.FailpointBetweenBatches}
	for i, f := range firsts {
		add(crashTrial{points: []crashPoint{f, {seconds[i%len(seconds)], 1}}})
	}
	// Randomized kills -9, one or two per run.
	for i := range 20 {
		add(crashTrial{kills: 1 + i%2})
	}
	// Down across the fire: caught up once.
	for range 3 {
		add(crashTrial{downAcross: true})
	}
	// A crash, and the daemon back only after the window: closed as interrupted.
	for _, p := range jobs.Failpoints {
		add(crashTrial{points: []crashPoint{{p, 1}}, expire: true})
	}
	return trials
}

func TestCrashAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test kills the binary dozens of times (about a minute)")
	}
	trials := crashTrials()
	fig := &crashFigures{perPoint: map[string]int{}}
	seed := uint64(time.Now().UnixNano())
	t.Logf("crash test: %d trials, %d at once, random seed %d", len(trials), crashWorkers, seed)
	began := time.Now()

	queue := make(chan int)
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				tr := trials[i]
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				// t.Run from several goroutines runs the trials concurrently
				// whatever -parallel is.
				t.Run(tr.name, func(t *testing.T) { runCrashTrial(t, tr, rng, fig) })
			}
		}()
	}
	for i := range trials {
		queue <- i
	}
	close(queue)
	wg.Wait()

	fig.mu.Lock()
	defer fig.mu.Unlock()
	var points []string
	for _, p := range jobs.Failpoints {
		points = append(points, fmt.Sprintf("%s=%d", p, fig.perPoint[p]))
		if fig.perPoint[p] < 5 {
			t.Errorf("failpoint %s crashed the daemon %d times, want at least 5", p, fig.perPoint[p])
		}
	}
	if kills := fig.failpointExits + fig.sigkills; kills < 50 {
		t.Errorf("the daemon was killed %d times, want at least 50", kills)
	}
	t.Logf("crash test figures: %d trials in %s; %d kills (%d at failpoints, %d random SIGKILLs; %d armed failpoints not reached); "+
		"per failpoint: %s; runs resumed %d, change orders re-attached %d, unrecorded submits found at SAE %d, "+
		"unrecorded batches never submitted %d, missed fires caught up %d; runs completed %d, closed as interrupted %d; "+
		"double restarts = %d, batches submitted twice = %d",
		fig.trials, time.Since(began).Round(time.Second), fig.failpointExits+fig.sigkills, fig.failpointExits, fig.sigkills,
		fig.notReached, strings.Join(points, " "), fig.resumed, fig.reattached, fig.foundUnrecorded, fig.neverSubmited,
		fig.caughtUp, fig.completed, fig.interrupted, fig.doubleRestarts, fig.doubleSubmits)
}

// crashConfig writes the trial's schedules file: one schedule firing once,
// at fire (a yearly cron), on apps A and B.
func crashConfig(t *testing.T, dir, endpoint string, fire time.Time, window time.Duration) string {
	t.Helper()
	fire = fire.UTC()
	path := filepath.Join(dir, "schedules.yaml")
	content := fmt.Sprintf(`sae:
  region: cn-hangzhou
  endpoint: %s
  quota_per_minute: 60
  quota_burst: 60
defaults:
  batch: {size: 1, pause: 200ms}
  lock_wait: 10s
  batch_timeout: 20s
  window: %s
schedules:
  - name: %s
    cron: "%d %d %d %d %d *"
    apps:
      - app_id: %s
      - app_id: %s
`, endpoint, window, crashSchedule, fire.Second(), fire.Minute(), fire.Hour(), fire.Day(), int(fire.Month()), crashAppA, crashAppB)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startCrashDaemon starts `scheduler run` and waits until it listens or
// exits (a failpoint can be met while it resumes, before it listens).
func startCrashDaemon(t *testing.T, cfg, state string, env []string) *daemonProc {
	t.Helper()
	listenFile := filepath.Join(t.TempDir(), "addr")
	p := &daemonProc{logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "-config", cfg, "-state", state, "-listen", "127.0.0.1:0", "-listen-file", listenFile,
		"-log-format", "json", "-poll-initial", "100ms", "-shutdown-timeout", "30s")
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the daemon: %v", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = exitCode(err)
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(listenFile); err == nil && strings.HasSuffix(string(b), "\n") {
			p.url = "http://" + strings.TrimSpace(string(b))
			return p
		}
		select {
		case <-p.exited:
			return p
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon neither listened nor exited within 20s; logs:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runEnded asks a daemon whether the run of fire has an outcome in the
// journal; ok=false when the daemon did not answer (it may be exiting).
func runEnded(url string, fire time.Time) (result jobs.Result, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/runs?schedule="+crashSchedule+"&n=10", nil)
	if err != nil {
		return "", false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var runs []journal.RunSummary
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&runs) != nil {
		return "", false
	}
	for _, r := range runs {
		if !r.Fire && r.ScheduledAt.Equal(fire) {
			return r.Result, true
		}
	}
	return "", true
}

// waitExitOrEnd waits until the daemon exits or the run ends; it reports
// whether the daemon exited.
func waitExitOrEnd(t *testing.T, p *daemonProc, fire time.Time, timeout time.Duration) (exited bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			return true
		default:
		}
		if p.url != "" {
			if res, ok := runEnded(p.url, fire); ok && res != "" {
				return false
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon neither exited nor ended the run within %s; logs:\n%s", timeout, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runCrashTrial(t *testing.T, tr crashTrial, rng *rand.Rand, fig *crashFigures) {
	replace := tr.replace
	apps := []emulator.AppSpec{app(crashAppA, 3, crashRestart), app(crashAppB, 2, crashRestart)}
	for i := range apps {
		apps[i].ReplaceInstanceIDs = &replace
	}
	e := startEmulator(t, apps...)
	originals := map[string][]string{}
	for _, a := range []string{crashAppA, crashAppB} {
		for _, in := range e.srv.Instances(a) {
			originals[a] = append(originals[a], in.ID)
		}
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "scheduler.db")
	window := crashWindow
	if tr.expire {
		window = expiringWindow
	}
	fire := time.Now().Truncate(time.Second).Add(2 * time.Second).UTC()
	cfg := crashConfig(t, dir, e.url, fire, window)
	// Last year's fire is in the journal: a daemon that comes up after
	// this year's (a loaded host) catches it up instead of never running it.
	seedJournal(t, state, fire.AddDate(-1, 0, 0))

	var logs []string
	kills, exits, notReached := 0, map[string]int{}, 0
	for _, cp := range tr.points {
		d := startCrashDaemon(t, cfg, state, binEnv(failpointEnv+"="+cp.String()))
		if !waitExitOrEnd(t, d, fire, 60*time.Second) {
			notReached++
			d.stop(t)
			logs = append(logs, d.logs.String())
			continue
		}
		logs = append(logs, d.logs.String())
		want := fmt.Sprintf("failpoint %s reached (time %d)", cp.point, cp.n)
		if d.code != exitFailpoint || !strings.Contains(d.logs.String(), want) {
			t.Fatalf("daemon armed with %s exited %d, want %d with %q; logs:\n%s", cp, d.code, exitFailpoint, want, d.logs.String())
		}
		exits[cp.point]++
	}
	for range tr.kills {
		d := startCrashDaemon(t, cfg, state, binEnv())
		// From the daemon's start: before the fire, in any batch, or after.
		delay := time.Duration(rng.Int64N(int64(5 * time.Second)))
		time.Sleep(delay)
		select {
		case <-d.exited:
			t.Fatalf("the daemon exited %d on its own; logs:\n%s", d.code, d.logs.String())
		default:
		}
		if res, _ := runEnded(d.url, fire); res != "" {
			d.stop(t) // the run had ended: nothing left to kill
			logs = append(logs, d.logs.String())
			break
		}
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		<-d.exited
		logs = append(logs, d.logs.String())
		kills++
		// Back at once or a little later: a kill before the fire and a
		// restart after it make a missed fire.
		time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
	}
	if tr.downAcross {
		d := startCrashDaemon(t, cfg, state, binEnv())
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		<-d.exited
		logs = append(logs, d.logs.String())
		kills++
		time.Sleep(time.Until(fire.Add(time.Second)))
	}
	if tr.expire {
		// Back only once the window has ended.
		time.Sleep(time.Until(fire.Add(window + 500*time.Millisecond)))
	}

	d := startCrashDaemon(t, cfg, state, binEnv())
	if waitExitOrEnd(t, d, fire, 60*time.Second) {
		t.Fatalf("the restarted daemon exited %d; logs:\n%s", d.code, d.logs.String())
	}
	result, _ := runEnded(d.url, fire)
	interruptedTotal, _ := d.metric(t, "sae_scheduler_runs_total", map[string]string{"schedule": crashSchedule, "result": "interrupted"})
	d.stop(t)
	logs = append(logs, d.logs.String())
	all := strings.Join(logs, "\n")
	if t.Failed() {
		t.Logf("daemon logs:\n%s", all)
	}

	// The outcome.
	wantResult := jobs.ResultSuccess
	if tr.expire && len(exits) > 0 {
		wantResult = jobs.ResultInterrupted
		if interruptedTotal != 1 {
			t.Errorf("runs_total{interrupted} after the restart = %v, want 1", interruptedTotal)
		}
	}
	if result != wantResult {
		t.Errorf("run result = %q, want %q; logs:\n%s", result, wantResult, all)
	}

	// The emulator's record.
	double, twice := 0, 0
	for _, a := range []string{crashAppA, crashAppB} {
		restarts := e.srv.Restarts(a)
		for _, id := range originals[a] {
			n := restarts[id]
			if n > 1 {
				double++
			}
			switch {
			case wantResult == jobs.ResultSuccess && n != 1:
				t.Errorf("app %s: instance %s restarted %d times, want exactly 1", a, id, n)
			case n > 1:
				t.Errorf("app %s: instance %s restarted %d times, want at most 1", a, id, n)
			}
		}
		targets := map[string]string{}
		for _, co := range e.srv.ChangeOrders(a) {
			for _, in := range co.Targets {
				if prev, ok := targets[in]; ok {
					twice++
					t.Errorf("app %s: instance %s submitted in change orders %s and %s", a, in, prev, co.ID)
				}
				targets[in] = co.ID
			}
		}
		if o := overlapping(e.srv.ChangeOrders(a)); len(o) > 0 {
			t.Errorf("app %s: overlapping change orders %v", a, o)
		}
	}

	count := func(msg string) int { return strings.Count(all, `"msg":"`+msg) }
	fig.mu.Lock()
	defer fig.mu.Unlock()
	fig.trials++
	fig.sigkills += kills
	fig.notReached += notReached
	for p, n := range exits {
		fig.perPoint[p] += n
		fig.failpointExits += n
	}
	fig.resumed += count("resuming an interrupted run")
	fig.reattached += count("change order re-attached")
	fig.foundUnrecorded += count("unrecorded change order found")
	fig.neverSubmited += count("unrecorded batch was never submitted")
	fig.caughtUp += count("a missed fire runs now")
	fig.interrupted += count("interrupted run closed")
	if result == jobs.ResultSuccess {
		fig.completed++
	}
	fig.doubleRestarts += double
	fig.doubleSubmits += twice
}

// seedJournal records a skipped fire at at: the schedule's history.
func seedJournal(t *testing.T, state string, at time.Time) {
	t.Helper()
	s, err := sqlite.Open(state, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFire(context.Background(), crashSchedule, at, jobs.ResultSkipped, jobs.ReasonSuspended); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// exitCode is a finished command's exit status (-1 when it did not run).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
