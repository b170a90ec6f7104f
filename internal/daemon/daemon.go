package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/sae-scheduler/sae-scheduler/internal/annotate"
	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/firing"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/metrics"
)

// Options configures a Daemon.
type Options struct {
	ConfigPath      string
	Listen          string        // HTTP address, e.g. ":9750"
	ShutdownTimeout time.Duration // how long in-flight change orders are watched after SIGTERM (default 5m)
	Version         string
	// APIToken guards every POST (Authorization: Bearer <token>). Empty: POSTs answer 403.
	APIToken string
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Clock    clock.Clock
	// SAEFactory builds the SAE clients for a configuration; it is called at
	// start and after every reload. Nil: internal/sae on the SDK's default
	// credential chain, feeding the daemon's metrics.
	SAEFactory SAEFactory
	// Out receives every run's outcome when it ends (the demo prints them); may be nil.
	Out func(jobs.RunOutcome)
	// Observer receives run events besides the metrics (the demo's progress); may be nil.
	Observer jobs.Observer
	// Poller decides when to look at a change order again; nil: jobs.AdaptivePoller{}.
	Poller jobs.Poller
	// PreflightLimit caps the reads of one preflight (0: DefaultPreflightLimit).
	PreflightLimit int
	// StatePath overrides the configuration's state.path (the journal's
	// SQLite file); "" keeps it. A relative path is relative to the working
	// directory.
	StatePath string
	// Store is the run journal to use instead of opening one (tests); the
	// daemon does not close it. Nil: the daemon opens state.path (StatePath)
	// and closes it at the end of Shutdown.
	Store journal.Store
	// Failpoint is given to the Runner (jobs.Runner.Failpoint): crash tests
	// stop the process at a named point of a rollout. Nil: none.
	Failpoint func(name string)
	// PruneInterval is how often runs older than state.retention are
	// deleted from the journal (0: DefaultPruneInterval); also once at start.
	PruneInterval time.Duration
}

// DefaultPreflightLimit is how many distinct app selectors a preflight reads
// at most. Each read spends the account's SAE quota (60 calls a minute, shared
// with the runs), so a file of thousands of apps is sampled, not read whole.
const DefaultPreflightLimit = 50

// SAEFactory returns the SAE client of a region for a configuration.
type SAEFactory func(cfg *config.Config) (func(region string) (jobs.SAE, error), error)

// Daemon fires schedules and serves the HTTP surface.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	clk     clock.Clock
	metrics *metrics.Metrics
	locks   *jobs.AppLocks
	// durations remembers change orders' durations across runs and reloads
	// for the lifetime of the daemon (Runner.Durations).
	durations *jobs.Durations
	store     journal.Store
	ownStore  bool // opened by New: closed by Shutdown
	closeOnce sync.Once
	bg        sync.WaitGroup // background loops on runCtx (pruning)

	reloadMu sync.Mutex // serialises reloads (SIGHUP and POST /-/reload)
	// annot posts run start and end to Grafana (grafana: in the file); nil
	// without. Replaced only by a reload that changes url or token_env.
	annot    *annotate.Annotator
	annotKey string

	mu        sync.Mutex
	cfg       *config.Config
	runner    *jobs.Runner
	scheds    map[string]*schedState // by name, replaced on reload
	running   map[string]*activeRun  // by schedule name, survives reloads
	runs      map[string]*activeRun  // by run ID: running and recently ended
	order     []string               // run IDs, oldest first, for trimming
	cron      *cron.Cron
	draining  bool // under mu, so a run is either counted in wg or never started
	preflight context.CancelFunc

	ready      atomic.Bool
	drainingA  atomic.Bool // mirrors draining for lock-free readers (/readyz)
	runCtx     context.Context
	cancelRuns context.CancelFunc
	wg         sync.WaitGroup
	srv        *http.Server
	addr       net.Addr
}

// schedState is one configured schedule and what the daemon decided of it.
// sched and spec never change; mu guards the rest. Lock order: a schedState's
// mu before Daemon.mu, so robfig handing out fire times and the decisions of
// different schedules never wait for one another (1,000 schedules due in the
// same second decide in parallel).
type schedState struct {
	sched jobs.Schedule
	spec  *firing.Spec

	mu sync.Mutex
	// retired: a reload replaced this state; a decision must look up the new one.
	retired bool
	// last is firing.State.LastScheduled: the latest fire decided (run,
	// skipped or missed). A reload keeps it when the timing did not change,
	// so a fire is never decided twice.
	last time.Time
	// cursor is the latest fire handed to robfig: each Next hands the one
	// after it.
	cursor time.Time
}

type activeRun struct {
	ID          string           `json:"id"`
	Schedule    string           `json:"schedule"`
	ScheduledAt time.Time        `json:"scheduled_at"`
	Started     time.Time        `json:"started"`
	Manual      bool             `json:"manual"`
	JournalID   int64            `json:"journal_id,omitempty"` // the run's row in the journal (history's id)
	Resumed     bool             `json:"resumed,omitempty"`    // an interrupted run resumed at start
	Outcome     *jobs.RunOutcome `json:"outcome,omitempty"`
	ctx         context.Context
	cancel      context.CancelFunc
	done        chan struct{}
	// open is the journal's record of the interrupted run to resume; nil for
	// a new run.
	open *journal.OpenRun
}

const keepEndedRuns = 200

// lateWake is how late after its instant a fire may still start on time:
// robfig's timer and the scheduler's goroutines add milliseconds, a loaded
// host more.
const lateWake = time.Second

// New loads the configuration, opens the run journal and builds the daemon.
// It returns the configuration's errors as they are (config.Errors) so the
// caller can print them with file:line, and a journal that cannot be opened
// (missing directory, a file that is not a SQLite database or is corrupt, a
// schema newer than this binary) as an error starting "state: ".
func New(opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Minute
	}
	if opts.PreflightLimit <= 0 {
		opts.PreflightLimit = DefaultPreflightLimit
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = DefaultPruneInterval
	}
	store, own := opts.Store, false
	if store == nil {
		if store, err = openStore(cfg.State, opts.StatePath); err != nil {
			return nil, err
		}
		own = true
	}
	d := &Daemon{
		opts:      opts,
		log:       opts.Logger,
		clk:       opts.Clock,
		metrics:   metrics.New(opts.Registry, opts.Version),
		locks:     jobs.NewAppLocks(),
		durations: jobs.NewDurations(),
		store:     store,
		ownStore:  own,
		running:   map[string]*activeRun{},
		runs:      map[string]*activeRun{},
	}
	if d.opts.SAEFactory == nil {
		d.opts.SAEFactory = NewSAEFactory(d.clk, Hooks{OnRequest: d.metrics.SAERequest, OnQuotaWait: d.metrics.QuotaWait, Logger: d.log})
	}
	d.runCtx, d.cancelRuns = context.WithCancel(context.Background())
	if err := d.apply(cfg); err != nil {
		d.closeStore()
		return nil, err
	}
	return d, nil
}

// annotator returns the Grafana annotator for cfg: the current one when
// url and token_env are unchanged, a new one otherwise (the old one sends
// what it has queued, in the background), nil without a grafana block.
// Called with reloadMu held (New and reloads), so no two calls interleave.
func (d *Daemon) annotator(cfg *config.Config) *annotate.Annotator {
	key := ""
	if g := cfg.Grafana; g != nil && g.URL != "" {
		key = g.URL + "\x00" + g.TokenEnv
	}
	if key == d.annotKey {
		return d.annot
	}
	if old := d.annot; old != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = old.Close(ctx)
		}()
	}
	d.annot, d.annotKey = nil, key
	if key != "" {
		// The token comes from the environment variable the file names;
		// it never stands in the file.
		d.annot = annotate.New(cfg.Grafana.URL, os.Getenv(cfg.Grafana.TokenEnv), &http.Client{Timeout: 10 * time.Second}, d.log)
	}
	return d.annot
}

// sameTiming reports whether a reload left a schedule's fire times alone.
func sameTiming(a, b jobs.Schedule) bool {
	return a.Cron == b.Cron && a.Location.String() == b.Location.String() && a.DST == b.DST
}

// apply builds the schedule states and SAE clients of cfg and swaps them in.
// Nothing is swapped when it fails. Runs in progress keep the Runner (and so
// the configuration) they started with.
func (d *Daemon) apply(cfg *config.Config) error {
	now := d.clk.Now()
	scheds := make(map[string]*schedState, len(cfg.Schedules))
	for _, s := range cfg.Schedules {
		spec, err := firing.NewSpec(s.Cron, s.Location, s.DST)
		if err != nil {
			return fmt.Errorf("%s: schedule %s: %w", s.Source, s.Name, err)
		}
		scheds[s.Name] = &schedState{sched: s, spec: spec, last: now}
	}
	saeFor, err := d.opts.SAEFactory(cfg)
	if err != nil {
		return fmt.Errorf("sae client: %w", err)
	}
	observers := jobs.Observers{d.metrics, d.opts.Observer}
	if a := d.annotator(cfg); a != nil {
		observers = append(observers, a)
	}
	runner := &jobs.Runner{
		SAE:      saeFor,
		Clock:    d.clk,
		Observer: observers,
		Poller:   d.opts.Poller,
		Logger:   d.log,
		AppLocks: d.locks,
		Grace:    d.opts.ShutdownTimeout,
		// One memory of change-order durations for the daemon's lifetime:
		// tonight's polling starts from last night's.
		Durations: d.durations,
		Failpoint: d.opts.Failpoint,
		// Journal is set per run (journal.ForRun), in launch.
	}
	infos := make([]metrics.ScheduleInfo, 0, len(cfg.Schedules))
	for _, s := range cfg.Schedules {
		infos = append(infos, metrics.ScheduleInfo{Name: s.Name, Labels: s.Labels, Suspended: s.Suspend})
	}
	// The metrics learn the schedules before the new cron can fire one.
	d.metrics.SetSchedules(infos)

	c := cron.New(cron.WithLocation(time.UTC))
	for name, st := range scheds {
		c.Schedule(cronSchedule{st: st}, cron.FuncJob(func() { d.fire(name) }))
	}
	// Hold every old state while swapping: a decision in progress ends
	// first, and one that starts later sees retired and uses the new state,
	// so the decision state carried over is final.
	d.mu.Lock()
	prev := d.scheds
	d.mu.Unlock()
	for _, o := range prev {
		o.mu.Lock()
	}
	d.mu.Lock()
	for name, st := range scheds {
		if o := d.scheds[name]; o != nil && sameTiming(o.sched, st.sched) {
			st.last = o.last
		}
	}
	for _, o := range d.scheds {
		o.retired = true
	}
	old := d.cron
	d.cfg, d.scheds, d.runner, d.cron = cfg, scheds, runner, c
	start := d.ready.Load() && !d.draining
	d.mu.Unlock()
	for _, o := range prev {
		o.mu.Unlock()
	}

	if old != nil {
		// Its jobs only decide and start runs; they do not block.
		<-old.Stop().Done()
	}
	if start {
		c.Start()
	}
	d.refreshNextRuns()
	return nil
}

// cronSchedule adapts a schedule to robfig's Schedule: robfig only
// triggers; the job decides with firing.Decide what is due.
type cronSchedule struct {
	st *schedState
}

// Next hands robfig the (jittered) instant of the fire after the last one
// handed out or decided. A fire that is already due and undecided (it came
// due during a reload, or the host slept) is handed as t, to be decided at
// once; then the cursor moves to t, so a long sleep costs one wake, not one
// per missed fire.
func (c cronSchedule) Next(t time.Time) time.Time {
	st := c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	after := later(st.cursor, st.last)
	if after.IsZero() {
		after = t
	}
	f := st.spec.Next(after)
	if f.IsZero() {
		return time.Time{}
	}
	at := firing.Jitter(f.At, st.sched.Jitter, st.sched.Name, 0)
	if !f.At.After(t) {
		st.cursor = t
		return later(at, t)
	}
	st.cursor = f.At
	return at
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// startingDeadline is how late after its instant a fire may still start:
// the schedule's starting_deadline, plus its jitter (the start is delayed on
// purpose) and a late wake.
func startingDeadline(s jobs.Schedule) time.Duration {
	return s.StartingDeadline + s.Jitter + lateWake
}

// fire runs when robfig's timer for a schedule goes off: it decides, with
// firing.Decide, what the fires that came due since the last decision
// become, records the skipped ones and starts at most one run.
func (d *Daemon) fire(name string) {
	now := d.clk.Now()
	st := d.lockSched(name)
	if st == nil {
		return // a stopped cron's late tick for a removed schedule
	}
	d.mu.Lock()
	draining, running := d.draining, d.running[name] != nil
	d.mu.Unlock()
	if draining {
		st.mu.Unlock()
		return
	}
	dec := firing.Decide(st.spec, firing.State{LastScheduled: st.last, Running: running},
		st.sched.Suspend, now, startingDeadline(st.sched))
	st.last = dec.LastScheduled
	sched := st.sched
	var (
		ar     *activeRun
		runner *jobs.Runner
	)
	if dec.Action == firing.ActionRun {
		if w := sched.Policy.Window; w > 0 && !now.Before(dec.Fire.At.Add(w)) {
			// A run started past its window could not submit a batch.
			dec.Action, dec.Reason = firing.ActionSkip, jobs.ReasonMissedDeadline
		} else {
			d.mu.Lock()
			switch {
			case d.draining:
				d.mu.Unlock()
				st.mu.Unlock()
				return
			case d.running[name] != nil:
				// A trigger through the API started one since the check.
				dec.Action, dec.Reason = firing.ActionSkip, jobs.ReasonOverlap
			default:
				ar, runner = d.reserveLocked(sched, dec.Fire.At, false), d.runner
			}
			d.mu.Unlock()
		}
	}
	st.mu.Unlock()

	if dec.TooMany {
		d.log.Warn("more fires were missed than are recorded (daemon down or clock jump)", "schedule", name, "recorded", len(dec.Missed))
	}
	for _, m := range dec.Missed {
		d.log.Warn("fire missed", "schedule", name, "scheduled_at", m.Fire.At, "reason", m.Reason)
		d.recordFire(name, m.Fire.At, m.Reason)
		d.metrics.Skipped(name, m.Reason, m.Fire.At)
	}
	switch dec.Action {
	case firing.ActionSkip:
		d.log.Info("fire skipped", "schedule", name, "scheduled_at", dec.Fire.At, "reason", dec.Reason)
		d.recordFire(name, dec.Fire.At, dec.Reason)
		d.metrics.Skipped(name, dec.Reason, dec.Fire.At)
	case firing.ActionRun:
		if late := now.Sub(dec.Fire.At); late > sched.Jitter+lateWake {
			// A catch-up: the daemon was down (or the host asleep) at the fire.
			d.log.Warn("a missed fire runs now, within its starting deadline", "schedule", name, "scheduled_at", dec.Fire.At, "late", late)
		}
		d.metrics.Scheduled(name, dec.Fire.At)
		d.launch(ar, sched, runner)
	}
	d.metrics.SetNextRun(name, nextRun(sched, dec.Next))
}

// lockSched returns the current state of the named schedule, locked, or nil
// when no such schedule is configured.
func (d *Daemon) lockSched(name string) *schedState {
	for {
		d.mu.Lock()
		st := d.scheds[name]
		d.mu.Unlock()
		if st == nil {
			return nil
		}
		st.mu.Lock()
		if !st.retired {
			return st
		}
		// A reload swapped it while we waited: the new state is installed.
		st.mu.Unlock()
	}
}

// nextRun is the next_run_timestamp_seconds of a schedule: its next fire,
// none (zero) while it is suspended.
func nextRun(s jobs.Schedule, f firing.Fire) time.Time {
	if s.Suspend {
		return time.Time{}
	}
	return f.At
}

var (
	errRunning  = errors.New("a run of this schedule is in progress")
	errDraining = errors.New("the daemon is shutting down")
	errNotFound = errors.New("not found")
)

// reserveLocked registers a run of sched for scheduledAt; launch starts it.
// d.mu must be held, the schedule must have no run in progress and the
// daemon must not be draining.
func (d *Daemon) reserveLocked(sched jobs.Schedule, scheduledAt time.Time, manual bool) *activeRun {
	ctx, cancel := context.WithCancel(d.runCtx)
	id := runID(sched.Name, scheduledAt)
	if manual {
		id += ".manual"
	}
	ar := &activeRun{
		ID:          id,
		Schedule:    sched.Name,
		ScheduledAt: scheduledAt,
		Started:     d.clk.Now(),
		Manual:      manual,
		ctx:         ctx,
		cancel:      cancel,
		done:        make(chan struct{}),
	}
	d.running[sched.Name] = ar
	d.remember(ar)
	// Counted while d.mu is held and draining is false: Shutdown, which sets
	// draining under d.mu, then waits for it.
	d.wg.Add(1)
	return ar
}

// launch starts the reserved run ar of sched on runner: a new run (begun
// in the journal first) or, when ar.open is set, the resumption of an
// interrupted one.
func (d *Daemon) launch(ar *activeRun, sched jobs.Schedule, runner *jobs.Runner) {
	d.metrics.SetRunDeadline(sched.Name, ar.ScheduledAt.Add(sched.Policy.Window))
	go func() {
		defer d.wg.Done()
		defer ar.cancel()
		out := d.execute(ar, sched, runner)
		d.mu.Lock()
		ar.Outcome = &out
		if d.running[sched.Name] == ar {
			delete(d.running, sched.Name)
		}
		d.mu.Unlock()
		close(ar.done)
		if d.opts.Out != nil {
			d.opts.Out(out)
		}
	}()
}

func (d *Daemon) remember(ar *activeRun) {
	d.runs[ar.ID] = ar
	d.order = append(d.order, ar.ID)
	for len(d.order) > keepEndedRuns {
		id := d.order[0]
		if r := d.runs[id]; r != nil && r.Outcome == nil {
			break // never forget a running run
		}
		delete(d.runs, id)
		d.order = d.order[1:]
	}
}

func runID(schedule string, at time.Time) string {
	return schedule + "." + at.UTC().Format("20060102T150405Z")
}

// refreshNextRuns publishes every schedule's next fire to the metrics.
func (d *Daemon) refreshNextRuns() {
	now := d.clk.Now()
	for _, st := range d.states() {
		st.mu.Lock()
		last := st.last
		st.mu.Unlock()
		d.metrics.SetNextRun(st.sched.Name, nextRun(st.sched, st.spec.Next(later(now, last))))
	}
}

// states returns the configured schedules' states.
func (d *Daemon) states() []*schedState {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*schedState, 0, len(d.scheds))
	for _, st := range d.scheds {
		out = append(out, st)
	}
	return out
}

// Reload re-reads the configuration file: validate, then swap. A bad file
// keeps the running configuration and returns its errors (config.Errors,
// one "FILE:LINE: field: message" per line). Reloads are serialised: SIGHUP
// and POST /-/reload never interleave.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := config.Load(d.opts.ConfigPath)
	if err == nil {
		err = d.apply(cfg)
	}
	d.metrics.ConfigReloaded(err == nil, d.clk.Now())
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "errors", errorLines(err))
		return err
	}
	d.log.Info("configuration reloaded", "schedules", len(cfg.Schedules))
	d.startPreflight(cfg)
	return nil
}

// errorLines splits a configuration error into its "FILE:LINE: ..." lines.
func errorLines(err error) []string {
	var errs config.Errors
	if errors.As(err, &errs) {
		out := make([]string, len(errs))
		for i, e := range errs {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

// Start listens on opts.Listen and starts firing. It returns once the
// daemon is ready; Addr then tells the address it listens on.
func (d *Daemon) Start() error {
	ln, err := net.Listen("tcp", d.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	d.addr = ln.Addr()
	d.srv = &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", "err", err)
		}
	}()
	d.metrics.ConfigReloaded(true, d.clk.Now())
	// Before the cron starts: the metrics show the journal's timestamps,
	// interrupted runs resume (or are closed) and missed fires are decided
	// before any new fire.
	if err := d.recover(); err != nil {
		_ = d.srv.Close()
		return err
	}
	d.startPruning()
	d.mu.Lock()
	c, cfg := d.cron, d.cfg
	d.ready.Store(true)
	d.mu.Unlock()
	c.Start()
	d.log.Info("listening", "addr", d.addr.String())
	d.log.Info("scheduler started", "schedules", len(cfg.Schedules), "version", d.opts.Version)
	d.startPreflight(cfg)
	return nil
}

// Addr returns the HTTP listener's address once started.
func (d *Daemon) Addr() net.Addr { return d.addr }

// Run serves until a terminating signal: SIGHUP reloads; SIGTERM or SIGINT
// drains (exit code 0, also when the shutdown timeout ran out); a second
// terminating signal exits at once with 1.
func (d *Daemon) Run(sigs <-chan os.Signal) int {
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			d.log.Info("SIGHUP: reloading", "config", d.opts.ConfigPath)
			_ = d.Reload()
			continue
		}
		d.log.Info("shutting down: no new run or batch; watching in-flight change orders", "signal", sig.String(), "timeout", d.opts.ShutdownTimeout)
		done := make(chan struct{})
		go func() { d.Shutdown(); close(done) }()
		for {
			select {
			case <-done:
				d.log.Info("stopped")
				return 0
			case s := <-sigs:
				if s == syscall.SIGHUP {
					continue
				}
				d.log.Error("second signal: exiting now", "signal", s.String())
				return 1
			}
		}
	}
	return 0
}

// Shutdown drains: no new run or batch starts; runs in progress stop after
// watching their in-flight change order to its end, bounded by the shutdown
// timeout. It returns when they ended or the timeout ran out (what was left
// is logged); /readyz answers 503 from its start.
func (d *Daemon) Shutdown() {
	d.mu.Lock()
	d.draining = true
	d.drainingA.Store(true)
	c := d.cron
	d.mu.Unlock()
	<-c.Stop().Done()
	d.cancelRuns()
	waited := make(chan struct{})
	go func() { d.wg.Wait(); close(waited) }()
	// The runner itself stops watching after ShutdownTimeout (its Grace);
	// the margin covers its last calls.
	timer := time.NewTimer(d.opts.ShutdownTimeout + 5*time.Second)
	defer timer.Stop()
	drained := false
	select {
	case <-waited:
		drained = true
	case <-timer.C:
		d.mu.Lock()
		var left []string
		for _, r := range d.running {
			left = append(left, r.ID)
		}
		d.mu.Unlock()
		sort.Strings(left)
		d.log.Error("shutdown timeout: runs still in progress are left as they are", "runs", left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.srv != nil {
		_ = d.srv.Shutdown(ctx)
	}
	if d.annot != nil {
		_ = d.annot.Close(ctx) // the runs' end annotations, sent within the same bound
	}
	d.bg.Wait()
	if drained {
		// A run still in progress would lose its last writes: leave the
		// journal open for it; the process exit closes the file, and the
		// next start resumes the run.
		d.closeStore()
	}
}

// Trigger starts a run of the named schedule now (the API's "run now") and
// returns its ID. It returns errNotFound for an unknown schedule, errRunning
// (with the running run's ID) when one is in progress, and errDraining while
// shutting down.
func (d *Daemon) Trigger(name string) (string, error) {
	d.mu.Lock()
	st := d.scheds[name]
	switch {
	case st == nil:
		d.mu.Unlock()
		return "", errNotFound
	case d.draining:
		d.mu.Unlock()
		return "", errDraining
	case d.running[name] != nil:
		id := d.running[name].ID
		d.mu.Unlock()
		return id, errRunning
	}
	sched, runner := st.sched, d.runner
	// Millisecond precision: the journal's key (schedule, instant) must not
	// meet a cron fire's whole second.
	ar := d.reserveLocked(sched, d.clk.Now().Truncate(time.Millisecond), true)
	d.mu.Unlock()
	d.log.Info("run triggered through the API", "schedule", name, "run", ar.ID)
	d.launch(ar, sched, runner)
	return ar.ID, nil
}

// Cancel stops a run after its current batch. It returns errNotFound when no
// such run is in progress.
func (d *Daemon) Cancel(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ar := d.runs[id]
	if ar == nil || ar.Outcome != nil {
		return errNotFound
	}
	ar.cancel()
	return nil
}

// startPreflight proves credentials and RAM permissions with one read per
// configured app selector (up to PreflightLimit), in the background; a
// reload's preflight replaces the previous one.
func (d *Daemon) startPreflight(cfg *config.Config) {
	ctx, cancel := context.WithTimeout(d.runCtx, 2*time.Minute)
	d.mu.Lock()
	if d.preflight != nil {
		d.preflight()
	}
	d.preflight = cancel
	runner := d.runner
	d.mu.Unlock()
	go func() {
		defer cancel()
		d.runPreflight(ctx, runner, cfg)
	}()
}

// runPreflight logs every failed read plainly; an expired timestamp is the
// host's clock, and says by how much. The daemon keeps serving whatever
// fails.
func (d *Daemon) runPreflight(ctx context.Context, runner *jobs.Runner, cfg *config.Config) {
	scheds, total := preflightSample(cfg.Schedules, d.opts.PreflightLimit)
	results := runner.Preflight(ctx, scheds)
	failed := 0
	for _, p := range results {
		if p.Err == nil {
			continue
		}
		if ctx.Err() != nil {
			return // replaced by a newer preflight, or shutting down
		}
		failed++
		switch jobs.CodeOf(p.Err) {
		case "InvalidTimeStamp.Expired":
			d.log.Error("preflight failed: the host clock is off; fix its time sync (NTP)", "schedule", p.Schedule, "target", p.Target, "err", p.Err)
		default:
			d.log.Error("preflight failed", "schedule", p.Schedule, "target", p.Target, "class", string(jobs.ClassOf(p.Err)), "err", p.Err)
		}
	}
	d.log.Info("preflight done", "checked", len(results), "failed", failed, "selectors", total)
}

// preflightSample returns schedules holding at most limit distinct
// selectors (the first ones, in file order) and how many there are in all.
func preflightSample(scheds []jobs.Schedule, limit int) ([]jobs.Schedule, int) {
	seen := map[string]bool{}
	var out []jobs.Schedule
	for _, s := range scheds {
		var keep []jobs.AppSelector
		for _, sel := range s.Apps {
			key := s.Region + "\x00" + sel.AppID + "\x00" + sel.NamespaceID
			if seen[key] {
				continue
			}
			seen[key] = true
			if len(seen) <= limit {
				keep = append(keep, sel)
			}
		}
		if len(keep) > 0 {
			s.Apps = keep
			out = append(out, s)
		}
	}
	return out, len(seen)
}

// scheduleView is one schedule in GET /api/v1/schedules.
type scheduleView struct {
	Name          string            `json:"name"`
	Cron          string            `json:"cron"`
	Timezone      string            `json:"timezone"`
	Suspended     bool              `json:"suspended"`
	Labels        map[string]string `json:"labels,omitempty"`
	Next          []time.Time       `json:"next"`
	LastScheduled time.Time         `json:"last_scheduled"`
	InProgress    bool              `json:"in_progress"`
	RunID         string            `json:"run_id,omitempty"`
	Source        string            `json:"source"`
}

func (d *Daemon) schedules(n int) []scheduleView {
	now := d.clk.Now()
	states := d.states()
	d.mu.Lock()
	runIDs := make(map[string]string, len(d.running))
	for name, r := range d.running {
		runIDs[name] = r.ID
	}
	d.mu.Unlock()
	out := make([]scheduleView, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		last := st.last
		st.mu.Unlock()
		v := scheduleView{
			Name: st.sched.Name, Cron: st.sched.Cron, Timezone: st.spec.Location().String(),
			Suspended: st.sched.Suspend, Labels: st.sched.Labels, Source: st.sched.Source,
			Next: []time.Time{}, LastScheduled: last,
		}
		for _, f := range st.spec.NextN(later(now, last), n) {
			v.Next = append(v.Next, f.At)
		}
		if id, ok := runIDs[st.sched.Name]; ok {
			v.InProgress, v.RunID = true, id
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
