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

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/firing"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/metrics"
)

// Options configures a Daemon.
type Options struct {
	ConfigPath      string
	Listen          string        // HTTP address, e.g. ":9750"
	ShutdownTimeout time.Duration // how long in-flight change orders are watched after SIGTERM
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
}

// SAEFactory returns the SAE client of a region for a configuration.
type SAEFactory func(cfg *config.Config) (func(region string) (jobs.SAE, error), error)

// Daemon fires schedules and serves the HTTP surface.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	clk     clock.Clock
	metrics *metrics.Metrics
	runner  *jobs.Runner
	locks   *jobs.AppLocks

	mu      sync.Mutex
	cfg     *config.Config
	scheds  map[string]*schedState // by name, replaced on reload
	running map[string]*activeRun  // by schedule name, survives reloads
	runs    map[string]*activeRun  // by run ID: running and recently ended
	order   []string               // run IDs, oldest first, for trimming
	cron    *cron.Cron

	reloadCh   chan chan error
	ready      atomic.Bool
	draining   atomic.Bool
	runCtx     context.Context
	cancelRuns context.CancelFunc
	wg         sync.WaitGroup
	srv        *http.Server
	addr       net.Addr
}

type schedState struct {
	sched   jobs.Schedule
	spec    *firing.Spec
	pending []firing.Fire // fires handed to robfig and not yet run, soonest first
}

type activeRun struct {
	ID          string           `json:"id"`
	Schedule    string           `json:"schedule"`
	ScheduledAt time.Time        `json:"scheduled_at"`
	Started     time.Time        `json:"started"`
	Manual      bool             `json:"manual"`
	Outcome     *jobs.RunOutcome `json:"outcome,omitempty"`
	cancel      context.CancelFunc
	done        chan struct{}
}

const keepEndedRuns = 200

// New loads the configuration and builds the daemon. It returns the
// configuration's errors as they are (config.Errors) so the caller can print
// them with file:line.
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
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		opts:     opts,
		log:      opts.Logger,
		clk:      opts.Clock,
		metrics:  metrics.New(opts.Registry, opts.Version),
		locks:    jobs.NewAppLocks(),
		running:  map[string]*activeRun{},
		runs:     map[string]*activeRun{},
		reloadCh: make(chan chan error),
	}
	if d.opts.SAEFactory == nil {
		d.opts.SAEFactory = NewSAEFactory(d.clk, Hooks{OnRequest: d.metrics.SAERequest, OnQuotaWait: d.metrics.QuotaWait})
	}
	d.runCtx, d.cancelRuns = context.WithCancel(context.Background())
	if err := d.apply(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// apply builds the schedule states and SAE clients of cfg and swaps them in.
// Nothing is swapped when it fails.
func (d *Daemon) apply(cfg *config.Config) error {
	scheds := make(map[string]*schedState, len(cfg.Schedules))
	for _, s := range cfg.Schedules {
		spec, err := firing.NewSpec(s.Cron, s.Location, s.DST)
		if err != nil {
			return fmt.Errorf("%s: schedule %s: %w", s.Source, s.Name, err)
		}
		scheds[s.Name] = &schedState{sched: s, spec: spec}
	}
	saeFor, err := d.opts.SAEFactory(cfg)
	if err != nil {
		return fmt.Errorf("sae client: %w", err)
	}
	runner := &jobs.Runner{
		SAE:      saeFor,
		Clock:    d.clk,
		Observer: jobs.Observers{d.metrics, d.opts.Observer},
		Poller:   d.opts.Poller,
		Logger:   d.log,
		AppLocks: d.locks,
		Grace:    d.opts.ShutdownTimeout,
	}

	d.mu.Lock()
	old := d.cron
	d.cfg, d.scheds, d.runner = cfg, scheds, runner
	d.cron = cron.New(cron.WithLocation(time.UTC))
	for name := range scheds {
		name := name
		d.cron.Schedule(cronSchedule{d: d, name: name}, cron.FuncJob(func() { d.fire(name) }))
	}
	infos := make([]metrics.ScheduleInfo, 0, len(cfg.Schedules))
	for _, s := range cfg.Schedules {
		infos = append(infos, metrics.ScheduleInfo{Name: s.Name, Labels: s.Labels, Suspended: s.Suspend})
	}
	started := d.ready.Load()
	d.mu.Unlock()

	if old != nil {
		<-old.Stop().Done() // its jobs only start runs; they do not block
	}
	d.metrics.SetSchedules(infos)
	if started && !d.draining.Load() {
		d.cron.Start()
	}
	d.refreshNextRuns()
	return nil
}

// cronSchedule adapts a firing.Spec to robfig's Schedule: robfig only
// triggers. Each fire it hands out is remembered so the job knows which
// scheduled instant it runs for.
type cronSchedule struct {
	d    *Daemon
	name string
}

func (c cronSchedule) Next(t time.Time) time.Time {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	st := c.d.scheds[c.name]
	if st == nil {
		return time.Time{}
	}
	after := t
	if n := len(st.pending); n > 0 && st.pending[n-1].At.After(after) {
		after = st.pending[n-1].At
	}
	f := st.spec.Next(after)
	if f.At.IsZero() {
		return time.Time{}
	}
	st.pending = append(st.pending, f)
	return firing.Jitter(f.At, st.sched.Jitter, st.sched.Name, 0)
}

// fire runs when robfig's timer for a schedule goes off.
func (d *Daemon) fire(name string) {
	d.mu.Lock()
	st := d.scheds[name]
	if st == nil || len(st.pending) == 0 {
		d.mu.Unlock()
		return
	}
	f := st.pending[0]
	st.pending = st.pending[1:]
	sched := st.sched
	d.mu.Unlock()
	d.handleFire(sched, f)
	d.refreshNextRuns()
}

// handleFire decides whether a due fire runs or is skipped, and starts it.
func (d *Daemon) handleFire(sched jobs.Schedule, f firing.Fire) {
	d.metrics.Scheduled(sched.Name, f.At)
	reason := ""
	d.mu.Lock()
	switch {
	case d.draining.Load():
		d.mu.Unlock()
		return
	case sched.Suspend:
		reason = jobs.ReasonSuspended
	case f.Skip:
		reason = jobs.ReasonDSTGap
	case d.running[sched.Name] != nil:
		reason = jobs.ReasonOverlap
	}
	d.mu.Unlock()
	if reason != "" {
		d.log.Info("fire skipped", "schedule", sched.Name, "scheduled_at", f.At, "reason", reason)
		d.metrics.Skipped(sched.Name, reason, f.At)
		return
	}
	if _, err := d.startRun(sched, f.At, false); err != nil {
		d.log.Warn("fire not started", "schedule", sched.Name, "err", err)
	}
}

var errRunning = errors.New("a run of this schedule is in progress")

// startRun starts a run of sched for scheduledAt unless one is in progress.
func (d *Daemon) startRun(sched jobs.Schedule, scheduledAt time.Time, manual bool) (*activeRun, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining.Load() {
		return nil, errors.New("daemon is shutting down")
	}
	if r := d.running[sched.Name]; r != nil {
		return r, errRunning
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	ar := &activeRun{
		ID:          runID(sched.Name, scheduledAt),
		Schedule:    sched.Name,
		ScheduledAt: scheduledAt,
		Started:     d.clk.Now(),
		Manual:      manual,
		cancel:      cancel,
		done:        make(chan struct{}),
	}
	d.running[sched.Name] = ar
	d.remember(ar)
	runner := d.runner
	d.metrics.SetRunDeadline(sched.Name, scheduledAt.Add(sched.Policy.Window))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		out := runner.Run(ctx, sched, scheduledAt)
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
	return ar, nil
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

// refreshNextRuns publishes each schedule's next fire to the metrics.
func (d *Daemon) refreshNextRuns() {
	now := d.clk.Now()
	d.mu.Lock()
	type nr struct {
		name string
		at   time.Time
	}
	var out []nr
	for name, st := range d.scheds {
		out = append(out, nr{name, st.spec.Next(now).At})
	}
	d.mu.Unlock()
	for _, x := range out {
		d.metrics.SetNextRun(x.name, x.at)
	}
}

// Reload re-reads the configuration file: validate, then swap. A bad file
// keeps the running configuration and returns its errors.
func (d *Daemon) Reload() error {
	resp := make(chan error, 1)
	d.reloadCh <- resp
	return <-resp
}

func (d *Daemon) reload() error {
	cfg, err := config.Load(d.opts.ConfigPath)
	if err == nil {
		err = d.apply(cfg)
	}
	now := d.clk.Now()
	d.metrics.ConfigReloaded(err == nil, now)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return err
	}
	d.log.Info("configuration reloaded", "schedules", len(cfg.Schedules))
	go d.preflight(cfg)
	return nil
}

// Start listens on opts.Listen and starts firing. It returns once the
// daemon is ready.
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
	go d.reloadOwner()
	d.metrics.ConfigReloaded(true, d.clk.Now())
	d.mu.Lock()
	c, cfg := d.cron, d.cfg
	d.mu.Unlock()
	c.Start()
	d.ready.Store(true)
	d.log.Info("scheduler started", "listen", d.addr.String(), "schedules", len(cfg.Schedules), "version", d.opts.Version)
	go d.preflight(cfg)
	return nil
}

// Addr returns the HTTP listener's address once started.
func (d *Daemon) Addr() net.Addr { return d.addr }

func (d *Daemon) reloadOwner() {
	for resp := range d.reloadCh {
		resp <- d.reload()
	}
}

// Run serves until a terminating signal: SIGHUP reloads; SIGTERM or SIGINT
// drains (exit code 0, also when the shutdown timeout ran out); a second
// terminating signal exits at once with 1.
func (d *Daemon) Run(sigs <-chan os.Signal) int {
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			_ = d.Reload()
			continue
		}
		d.log.Info("shutting down", "signal", sig.String(), "timeout", d.opts.ShutdownTimeout)
		done := make(chan struct{})
		go func() { d.Shutdown(); close(done) }()
		for {
			select {
			case <-done:
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
// watching their in-flight change order to its end, bounded by the
// shutdown timeout.
func (d *Daemon) Shutdown() {
	d.draining.Store(true)
	d.mu.Lock()
	c := d.cron
	d.mu.Unlock()
	<-c.Stop().Done()
	d.cancelRuns()
	waited := make(chan struct{})
	go func() { d.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(d.opts.ShutdownTimeout + 5*time.Second):
		d.log.Error("shutdown timeout: runs still in progress are left as they are")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.srv != nil {
		_ = d.srv.Shutdown(ctx)
	}
}

// Trigger starts a run of the named schedule now (the API's "run now").
func (d *Daemon) Trigger(name string) (string, error) {
	d.mu.Lock()
	st := d.scheds[name]
	d.mu.Unlock()
	if st == nil {
		return "", errNotFound
	}
	ar, err := d.startRun(st.sched, d.clk.Now().Truncate(time.Second), true)
	if ar == nil {
		return "", err
	}
	return ar.ID, err
}

var errNotFound = errors.New("not found")

// Cancel stops a run after its current batch.
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

// preflight proves credentials and RAM permissions with one read per
// configured app. A failure is logged plainly; the daemon keeps serving.
func (d *Daemon) preflight(cfg *config.Config) {
	d.mu.Lock()
	runner := d.runner
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(d.runCtx, 2*time.Minute)
	defer cancel()
	for _, p := range runner.Preflight(ctx, cfg.Schedules) {
		if p.Err != nil {
			d.log.Error("preflight failed", "schedule", p.Schedule, "target", p.Target, "err", p.Err)
		}
	}
}

// scheduleView is one schedule in GET /api/v1/schedules.
type scheduleView struct {
	Name       string            `json:"name"`
	Cron       string            `json:"cron"`
	Timezone   string            `json:"timezone"`
	Suspended  bool              `json:"suspended"`
	Labels     map[string]string `json:"labels,omitempty"`
	Next       []time.Time       `json:"next"`
	InProgress bool              `json:"in_progress"`
	RunID      string            `json:"run_id,omitempty"`
	Source     string            `json:"source"`
}

func (d *Daemon) schedules(n int) []scheduleView {
	now := d.clk.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]scheduleView, 0, len(d.scheds))
	for _, st := range d.scheds {
		v := scheduleView{
			Name: st.sched.Name, Cron: st.sched.Cron, Timezone: st.sched.Location.String(),
			Suspended: st.sched.Suspend, Labels: st.sched.Labels, Source: st.sched.Source,
		}
		for _, f := range st.spec.NextN(now, n) {
			v.Next = append(v.Next, f.At)
		}
		if r := d.running[st.sched.Name]; r != nil {
			v.InProgress, v.RunID = true, r.ID
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
