// Command daemon measures the scheduler daemon against issue 4's performance
// targets and prints the figures; it asserts nothing (timings belong here,
// never in tests). Loopback only, bounded: about 40 s in full, under 30 s
// with -quick.
//
//	go run ./bench/daemon            # full: 1,000 and 10,000 schedules, 20 s of idle CPU
//	go run ./bench/daemon -quick     # CI: 1,000 schedules for RSS, 5 s of idle CPU
//
// Figures (targets in parentheses):
//   - load + validate (config.Load) of 1,000 schedules (< 100 ms) and 10,000
//     (< 1 s), and daemon.New on the same files (load, fire specs, metrics);
//   - RSS of the real binary (`scheduler run`, its metrics registered) with
//     1,000 (< 64 MiB) and 10,000 schedules (< 256 MiB), /proc/PID/status
//     VmRSS after start, preflight and a /metrics scrape;
//   - idle CPU of that binary with 1,000 schedules (< 0.1% of a core), from
//     /proc/PID/stat utime+stime;
//   - lateness of run starts behind their scheduled instant with 1,000
//     schedules due in the same second (p50/p99; p99 < 50 ms), in-process,
//     the SAE side being the emulator on 127.0.0.1: when the daemon decided
//     the start, when the journal's BeginRun (the write-ahead run row, in
//     the SQLite journal the daemon really uses) returned — the target's
//     figure — and the EventRunStarted time, each minus the scheduled instant.
//
// Every daemon and binary keeps its journal in the bench's temporary
// directory (nothing is written to the working directory), and every daemon
// built is closed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/daemon"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

const (
	accessKeyID     = "LTAI5tBenchDaemonKey1"
	accessKeySecret = "bench-daemon-secret"
	// apps is the size of the emulated world the schedules share: the
	// preflight reads each once.
	apps = 20
	// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat
	// (100 on every Linux architecture Go supports).
	clkTck = 100
)

func main() {
	quick := flag.Bool("quick", false, "a shorter run for CI (< 30 s)")
	binPath := flag.String("bin", "", "a prebuilt scheduler binary (default: go build ./cmd/scheduler)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the lateness burst to `FILE`")
	flag.Parse()
	if err := run(*quick, *binPath); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(quick bool, binPath string) error {
	for k, v := range map[string]string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID":         accessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET":     accessKeySecret,
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
		"ALIBABA_CLOUD_CLI_PROFILE_DISABLED":  "true",
	} {
		os.Setenv(k, v)
	}
	dir, err := os.MkdirTemp("", "bench-daemon-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var world []emulator.AppSpec
	for i := range apps {
		world = append(world, emulator.AppSpec{AppID: appID(i), Instances: 2, RestartTime: time.Second})
	}
	emu, err := emulator.New(emulator.Config{AccessKeys: map[string]string{accessKeyID: accessKeySecret}, Apps: world, QuotaPerMinute: -1, Seed: 1})
	if err != nil {
		return err
	}
	endpoint, err := emu.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer emu.Close()

	fmt.Printf("bench/daemon: %s %s/%s, %d CPUs, quick=%v\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), quick)

	// First, on a fresh heap: the other measurements leave garbage behind.
	fmt.Println("lateness of run starts, 1,000 schedules due in the same second (each instant - the scheduled one):")
	if err := lateness(dir, endpoint, 1000); err != nil {
		return err
	}

	files := map[int]string{}
	for _, n := range []int{1000, 10000} {
		files[n] = filepath.Join(dir, fmt.Sprintf("schedules-%d.yaml", n))
		if err := writeSchedules(files[n], endpoint, n, nil); err != nil {
			return err
		}
	}

	fmt.Println("\nload + validate (config.Load; daemon.New adds fire specs and metrics), median of 5:")
	for _, n := range []int{1000, 10000} {
		load, err := median(5, func() error { _, err := config.Load(files[n]); return err })
		if err != nil {
			return err
		}
		state := filepath.Join(dir, fmt.Sprintf("new-%d.db", n))
		build, err := median(5, func() error {
			d, err := daemon.New(daemon.Options{ConfigPath: files[n], StatePath: state, Logger: discard(), Registry: prometheus.NewRegistry()})
			if err != nil {
				return err
			}
			d.Close()
			return nil
		})
		if err != nil {
			return err
		}
		target := map[int]string{1000: "100ms", 10000: "1s"}[n]
		fmt.Printf("  %6d schedules: config.Load %8s   daemon.New %8s   (target < %s)\n", n, round(load), round(build), target)
	}

	if binPath == "" {
		binPath = filepath.Join(dir, "scheduler")
		build := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/scheduler")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build (run from the repository root): %w", err)
		}
	}

	fmt.Println("\nthe real binary (`scheduler run`), after start and preflight:")
	sizes := []int{1000, 10000}
	if quick {
		sizes = []int{1000}
	}
	idle := 20 * time.Second
	if quick {
		idle = 5 * time.Second
	}
	for _, n := range sizes {
		p, err := startBinary(binPath, files[n], dir, filepath.Join(dir, fmt.Sprintf("run-%d.db", n)))
		if err != nil {
			return err
		}
		rest, rss, hwm, scrape, err := p.memory()
		if err == nil {
			target := map[int]string{1000: "64 MiB", 10000: "256 MiB"}[n]
			fmt.Printf("  %6d schedules: VmRSS %6.1f MiB at rest, %6.1f MiB after a /metrics scrape of %.1f MiB (VmHWM %6.1f MiB)  (target < %s)\n",
				n, mib(rest), mib(rss), mib(scrape), mib(hwm), target)
		}
		if err == nil && n == 1000 {
			var (
				cpu   float64
				ticks int64
			)
			cpu, ticks, err = p.idleCPU(idle)
			if err == nil {
				fmt.Printf("  %6d schedules: idle CPU %.3f%% of a core over %s (%d ticks of 10ms; no fire due)  (target < 0.1%%)\n", n, cpu*100, idle, ticks)
			}
		}
		p.stop()
		if err != nil {
			return err
		}
	}

	return nil
}

// cpuProfile is the -cpuprofile file ("" for none).
var cpuProfile string

func appID(i int) string { return fmt.Sprintf("bench-app-%02d", i) }

// writeSchedules writes n schedules on the shared apps. cron gives schedule
// i's expression; nil means a nightly one that never fires during the bench,
// and a quota of 60 calls a minute in bursts of 60, so the preflight is over
// at once. With a cron, the quota is the default (30 a minute, bursts of 3),
// as in production: it is the limit that queues rollouts once they started.
func writeSchedules(path, endpoint string, n int, cron func(i int) string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "sae:\n  region: cn-hangzhou\n  endpoint: %s\n", endpoint)
	if cron == nil {
		b.WriteString("  quota_per_minute: 60\n  quota_burst: 60\n")
	}
	b.WriteString("defaults:\n  timezone: Asia/Shanghai\n  batch: {size: 50%, pause: 1s}\n  window: 10m\n  lock_wait: 1m\nschedules:\n")
	zones := []string{"Asia/Shanghai", "America/New_York", "Europe/Berlin", "UTC"}
	for i := range n {
		expr := fmt.Sprintf("%d %d * * *", i%60, i%24)
		if cron != nil {
			expr = cron(i)
		}
		fmt.Fprintf(&b, "  - name: s-%05d\n    cron: %q\n    timezone: %s\n    labels: {team: t%d}\n    apps:\n      - app_id: %s\n",
			i, expr, zones[i%len(zones)], i%10, appID(i%apps))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func discard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func median(n int, f func() error) (time.Duration, error) {
	var ds []time.Duration
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2], nil
}

func round(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// proc is a running `scheduler run`.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startBinary(bin, cfg, dir, state string) (*proc, error) {
	listenFile := filepath.Join(dir, "addr")
	os.Remove(listenFile)
	p := &proc{logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "-config", cfg, "-state", state, "-listen", "127.0.0.1:0", "-listen-file", listenFile, "-log-format", "json")
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(listenFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			p.url = "http://" + strings.TrimSpace(string(b))
			break
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("scheduler run exited: %s", p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("scheduler run did not listen within 30s: %s", p.logs.String())
		}
	}
	// The preflight reads the apps in the background: wait for it, so that
	// what follows measures the daemon at rest.
	for !strings.Contains(p.logs.String(), `"msg":"preflight done"`) {
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("no preflight within 30s: %s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p, nil
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// memory reads VmRSS at rest, then scrapes /metrics once (a scrape
// allocates), lets the heap settle and reads VmRSS and VmHWM again.
func (p *proc) memory() (rest, rss, hwm, scrape int64, err error) {
	rest, _, err = p.status()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	scrape, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	time.Sleep(2 * time.Second)
	rss, hwm, err = p.status()
	return rest, rss, hwm, scrape, err
}

// status reads VmRSS and VmHWM from /proc/PID/status.
func (p *proc) status() (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// cpuTicks returns utime+stime of the process in clock ticks.
func (p *proc) cpuTicks() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/PID/stat: %q", s)
	}
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/PID/stat: %q", s)
	}
	return ut + st, nil
}

// idleCPU returns the fraction of one core the process used over d and
// the clock ticks (10 ms each) it used.
func (p *proc) idleCPU(d time.Duration) (float64, int64, error) {
	t0, err := p.cpuTicks()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	time.Sleep(d)
	t1, err := p.cpuTicks()
	if err != nil {
		return 0, 0, err
	}
	return float64(t1-t0) / clkTck / time.Since(start).Seconds(), t1 - t0, nil
}

// startRecorder records each run's start lateness.
type startRecorder struct {
	mu    sync.Mutex
	late  []time.Duration
	all   chan struct{}
	want  int
	fired bool
}

func (r *startRecorder) Observe(e jobs.Event) {
	if e.Kind != jobs.EventRunStarted {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.late = append(r.late, e.Time.Sub(e.ScheduledAt))
	if len(r.late) == r.want && !r.fired {
		r.fired = true
		close(r.all)
	}
}

// lateness runs n schedules that fire in the same second, in-process, and
// prints how late their runs started.
func lateness(dir, endpoint string, n int) error {
	// A second far enough ahead for New and Start to be done.
	due := time.Now().Add(4 * time.Second).Truncate(time.Second)
	sec := due.UTC().Second()
	path := filepath.Join(dir, "due.yaml")
	if err := writeSchedules(path, endpoint, n, func(int) string { return fmt.Sprintf("%d * * * * *", sec) }); err != nil {
		return err
	}
	rec := &startRecorder{all: make(chan struct{}), want: n}
	// The journal the daemon would open (SQLite, WAL, synchronous=NORMAL),
	// opened here to time its BeginRuns; the daemon does not close a store
	// it is given.
	sq, err := sqlite.Open(filepath.Join(dir, "lateness.db"), sqlite.Options{})
	if err != nil {
		return err
	}
	defer sq.Close()
	store := &timedStore{Store: sq}
	d, err := daemon.New(daemon.Options{
		ConfigPath:      path,
		Store:           store,
		Listen:          "127.0.0.1:0",
		Logger:          discard(), // JSON formatting of every line, at info, as in production
		Registry:        prometheus.NewRegistry(),
		Observer:        rec,
		ShutdownTimeout: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	if err := d.Start(); err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		time.Sleep(time.Until(due) - 200*time.Millisecond)
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	select {
	case <-rec.all:
	case <-time.After(time.Until(due) + 15*time.Second):
	}
	// The profile is the burst's: what follows (the API reads, the drain)
	// is not the start path.
	pprof.StopCPUProfile()
	// The daemon's own decision time of each run: its "started" in the API.
	var decided []time.Duration
	for i := range n {
		id := fmt.Sprintf("s-%05d.%s", i, due.UTC().Format("20060102T150405Z"))
		resp, err := http.Get("http://" + d.Addr().String() + "/api/v1/runs/" + id)
		if err != nil {
			return err
		}
		var r struct {
			Started     time.Time `json:"started"`
			ScheduledAt time.Time `json:"scheduled_at"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			decided = append(decided, r.Started.Sub(r.ScheduledAt))
		}
	}
	d.Shutdown()
	rec.mu.Lock()
	late := append([]time.Duration(nil), rec.late...)
	rec.mu.Unlock()
	store.mu.Lock()
	begun := append([]time.Duration(nil), store.begun...)
	store.mu.Unlock()
	if len(late) == 0 || len(decided) == 0 || len(begun) == 0 {
		return fmt.Errorf("no run started")
	}
	printQuantiles("decided (before the journal)", decided, n)
	printQuantiles("journaled (BeginRun returned)", begun, n)
	printQuantiles("run started (EventRunStarted)", late, n)
	return nil
}

// timedStore is the daemon's journal, timing when each BeginRun that
// created its run returned, behind the run's scheduled instant.
type timedStore struct {
	journal.Store
	mu    sync.Mutex
	begun []time.Duration
}

func (s *timedStore) BeginRun(ctx context.Context, key journal.RunKey, rec journal.RunRecord) (int64, bool, error) {
	id, created, err := s.Store.BeginRun(ctx, key, rec)
	if err == nil && created {
		late := time.Since(key.ScheduledAt)
		s.mu.Lock()
		s.begun = append(s.begun, late)
		s.mu.Unlock()
	}
	return id, created, err
}

func printQuantiles(what string, ds []time.Duration, n int) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	fmt.Printf("  %-38s %4d of %d: min %8s  p50 %8s  p99 %8s  max %8s  (target p99 < 50ms)\n",
		what, len(ds), n, round(ds[0]), round(q(0.50)), round(q(0.99)), round(ds[len(ds)-1]))
}
