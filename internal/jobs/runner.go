package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

// SAEProvider returns the SAE client of a region.
type SAEProvider func(region string) (SAE, error)

// StaticSAE returns a provider that gives s for every region.
func StaticSAE(s SAE) SAEProvider {
	return func(string) (SAE, error) { return s, nil }
}

// DefaultGrace is how long a cancelled run keeps watching its in-flight
// change orders when Runner.Grace is zero.
const DefaultGrace = 5 * time.Minute

// Runner rolls schedules' restarts. Only SAE is required; a Runner is safe
// for concurrent runs, which share its AppLimit.
type Runner struct {
	SAE      SAEProvider
	Clock    clock.Clock    // nil: the wall clock
	Observer Observer       // nil: none
	Journal  Journal        // nil: NopJournal
	Logger   *slog.Logger   // nil: discard
	Rand     func() float64 // jitter source in [0, 1), safe for concurrent use; nil: math/rand/v2
	AppLimit *AppLimiter    // caps app rollouts at once across all runs; nil: unlimited
	AppLocks *AppLocks      // one rollout per app across all runs (two schedules may share an app); nil: none
	Poller   Poller         // change-order polling; nil: AdaptivePoller{}
	// Durations seeds each app's polling with its change orders' durations
	// from earlier runs, and learns this run's; nil: every run starts cold.
	Durations *Durations
	// Grace bounds how long a cancelled run watches its in-flight change
	// orders to their end (0: DefaultGrace).
	Grace time.Duration
	// Failpoint, when set, is called at the named crash points of a rollout
	// (the Failpoint* constants) so crash tests can stop the process exactly
	// there. nil: none. It may exit the process, or panic with ErrCrash to
	// simulate a crash in-process; any other panic propagates.
	Failpoint func(name string)
}

func (r *Runner) clock() clock.Clock {
	if r.Clock == nil {
		return clock.Real{}
	}
	return r.Clock
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return r.Logger
}

func (r *Runner) journal() Journal {
	if r.Journal == nil {
		return NopJournal{}
	}
	return r.Journal
}

func (r *Runner) poller() Poller {
	if r.Poller == nil {
		return AdaptivePoller{}
	}
	return r.Poller
}

func (r *Runner) grace() time.Duration {
	if r.Grace <= 0 {
		return DefaultGrace
	}
	return r.Grace
}

func (r *Runner) rand() float64 {
	if r.Rand == nil {
		return rand.Float64()
	}
	return r.Rand()
}

// run is the state of one Run shared by its app rollouts.
type run struct {
	r        *Runner
	api      SAE
	s        Schedule
	p        Policy
	at       time.Time
	deadline time.Time // at + Window: no new batch after it
	log      *slog.Logger

	abort context.CancelCauseFunc // an account error ends the run at once

	priors  map[string]*appPrior // Resume: what the journal knew, by app ID
	known   map[string]bool      // Resume: apps the journal has ended or started (appKey): no selector failure is reported for them
	crashed atomic.Bool          // a Failpoint panicked with ErrCrash

	mu         sync.Mutex
	failedApps int
	accountErr error
}

func (rn *run) now() time.Time { return rn.r.clock().Now() }

func (rn *run) emit(e Event) {
	if rn.r.Observer == nil || rn.crashed.Load() {
		return // a crashed process reports nothing more
	}
	e.Time = rn.now()
	e.Schedule, e.ScheduledAt = rn.s.Name, rn.at
	rn.r.Observer.Observe(e)
}

// backoff is the wait before retry number attempt after err, at least the
// server's Retry-After hint.
func (rn *run) backoff(attempt int, err error) time.Duration {
	d := Backoff(attempt, rn.r.rand)
	var se *SAEError
	if errors.As(err, &se) && se.RetryAfter > d {
		d = se.RetryAfter
	}
	return d
}

// retry calls f until it returns anything but a ClassRetryable error,
// backing off between calls, as long as the next call would start before
// bound. It returns f's last result, or ctx's error if ctx ends while it
// waits.
func retry[T any](ctx context.Context, rn *run, bound time.Time, f func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := f(ctx)
		if err == nil || ClassOf(err) != ClassRetryable {
			return v, err
		}
		d := rn.backoff(attempt, err)
		if rn.now().Add(d).After(bound) {
			return v, err
		}
		rn.log.Debug("retrying", "error", err, "wait", d)
		if serr := rn.r.clock().Sleep(ctx, d); serr != nil {
			return v, serr
		}
	}
}

func withDefaults(p Policy) Policy {
	if p.BatchTimeout <= 0 {
		p.BatchTimeout = DefaultPolicy().BatchTimeout
	}
	if p.AppConcurrency < 1 {
		p.AppConcurrency = 1
	}
	if p.OnStuck == "" {
		p.OnStuck = StuckAbort
	}
	return p
}

func (r *Runner) newRun(s Schedule, at time.Time) *run {
	rn := &run{r: r, s: s, p: withDefaults(s.Policy), at: at}
	rn.deadline = at.Add(rn.p.Window)
	if rn.p.Window <= 0 {
		rn.deadline = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rn.log = r.logger().With("schedule", s.Name, "scheduled_at", at)
	return rn
}

// Run performs one rollout of s for its fire at scheduledAt and returns its
// outcome; it never returns early while a change order of its own is in
// flight, except past the grace period after ctx ends. Failures are in the
// outcome, never panics.
//
// Run-level result (the first rule that applies):
//  1. an account error, an SAE client that cannot be built, or nothing
//     resolved and something failed: failed;
//  2. any app cancelled: cancelled;
//  3. any app failed: partial if the run restarted any instance, else failed;
//  4. any app needs_confirmation: needs_confirmation;
//  5. any app deadline_exceeded: deadline_exceeded;
//  6. any app partial: partial;
//  7. every app skipped (or no app): skipped, with their reason when they share one;
//  8. otherwise (success, possibly with skipped apps): success.
//
// Reason carries the first failed app's code (rule 1 and 3) or the shared
// skip reason (rule 7).
//
// When a Failpoint panics with ErrCrash, Run stops at once: no further SAE
// call, journal write or event, and the outcome is interrupted.
func (r *Runner) Run(ctx context.Context, s Schedule, scheduledAt time.Time) RunOutcome {
	return r.run(ctx, s, scheduledAt, nil)
}

// run is Run, and Resume when prior is not nil.
func (r *Runner) run(ctx context.Context, s Schedule, scheduledAt time.Time, prior *Prior) (out RunOutcome) {
	rn := r.newRun(s, scheduledAt)
	// out is the named result so that the deferred Ended reaches the caller.
	out = RunOutcome{Schedule: s.Name, ScheduledAt: scheduledAt, Started: rn.now()}
	if prior != nil && !prior.Started.IsZero() {
		out.Started = prior.Started // one run, interrupted: its duration counts the outage
	}
	if prior != nil {
		rn.log.Info("run resumed", "window_ends", rn.deadline, "ended_apps", len(prior.Ended), "batches", len(prior.Batches))
	} else {
		rn.log.Info("run started", "window_ends", rn.deadline)
	}
	rn.emit(Event{Kind: EventRunStarted})
	defer func() {
		out.Ended = rn.now()
		rn.log.Info("run ended", "result", out.Result, "reason", out.Reason, "duration", out.Ended.Sub(out.Started))
		rn.emit(Event{Kind: EventRunEnded, Result: out.Result, Reason: out.Reason, Duration: out.Ended.Sub(out.Started), Run: &out})
	}()
	defer func() {
		if v := recover(); v != nil {
			if v != any(ErrCrash) {
				panic(v)
			}
			rn.crash()
			out.Result, out.Reason = ResultInterrupted, ReasonCrash
		}
	}()

	api, err := r.SAE(s.Region)
	if err != nil {
		rn.log.Error("no sae client", "region", s.Region, "error", err)
		out.Result, out.Reason = ResultFailed, CodeUnresolved
		out.Apps = priorEnded(prior)
		return out
	}
	rn.api = api
	if r.Failpoint != nil {
		rn.api = crashGate{SAE: api, rn: rn}
	}

	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	rn.abort = abort

	if prior != nil {
		rn.known = map[string]bool{}
		for _, o := range prior.Ended {
			rn.known[appKey(o.App)] = true
		}
		for _, b := range prior.Batches {
			rn.known[b.AppID] = true
		}
	}
	apps, failed, err := rn.resolve(runCtx, rn.deadline)
	if prior != nil {
		var ended []AppOutcome
		apps, failed, ended = rn.adoptPrior(*prior, apps, failed)
		out.Apps = append(out.Apps, ended...)
	}
	out.Apps = append(out.Apps, failed...)
	if err != nil {
		switch {
		case ClassOf(err) == ClassAccount:
			out.Result, out.Reason = ResultFailed, CodeOf(err)
		case ctx.Err() != nil:
			out.Result = ResultCancelled
		default:
			out.Result, out.Reason = ResultFailed, CodeUnresolved
		}
		rn.log.Error("resolving apps failed", "error", err)
		return out
	}
	out.Apps = append(out.Apps, rn.rollApps(runCtx, ctx, apps)...)
	if rn.crashed.Load() {
		out.Result, out.Reason = ResultInterrupted, ReasonCrash
		return out
	}
	out.Result, out.Reason = aggregate(out.Apps)
	rn.mu.Lock()
	if rn.accountErr != nil {
		out.Result, out.Reason = ResultFailed, CodeOf(rn.accountErr)
	}
	rn.mu.Unlock()
	return out
}

// rollApps rolls apps, AppConcurrency at a time, in order. parent is the
// caller's context (to tell its cancellation from an account abort).
func (rn *run) rollApps(ctx, parent context.Context, apps []App) []AppOutcome {
	outs := make([]AppOutcome, len(apps))
	slots := make(chan struct{}, rn.p.AppConcurrency)
	var wg sync.WaitGroup
	for i, app := range apps {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			outs[i] = rn.notStarted(app, parent)
			continue
		}
		rn.mu.Lock()
		overBudget := rn.failedApps > rn.p.MaxFailedApps
		rn.mu.Unlock()
		// An app the interrupted run had started is finished whatever the
		// budget or the window says: its change orders are re-attached.
		started := rn.priors[app.ID] != nil
		switch {
		case overBudget && !started:
			outs[i] = AppOutcome{App: app, Result: ResultSkipped, Reason: ReasonFailureBudget,
				Message: fmt.Sprintf("more than %d apps failed", rn.p.MaxFailedApps)}
		case !rn.now().Before(rn.deadline) && !started:
			outs[i] = AppOutcome{App: app, Result: ResultDeadlineExceeded, Message: "the window ended before the app started"}
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }() // runs last: the failure count is up to date for the next app
				defer func() {
					if v := recover(); v != nil {
						if v != any(ErrCrash) {
							panic(v)
						}
						// A simulated crash: this goroutine stops here, the others
						// at their next SAE call or journal write.
						rn.crash()
						outs[i] = AppOutcome{App: app, Result: ResultInterrupted, Reason: ReasonCrash}
					}
				}()
				o := rn.rollApp(ctx, parent, app)
				if o.Result == ResultFailed {
					rn.mu.Lock()
					rn.failedApps++
					rn.mu.Unlock()
				}
				outs[i] = o
			}()
			continue
		}
		<-slots
		outs[i].Started, outs[i].Ended = rn.now(), rn.now()
		rn.emit(Event{Kind: EventAppEnded, App: app, Result: outs[i].Result, Reason: outs[i].Reason, AppOutcome: &outs[i]})
	}
	wg.Wait()
	return outs
}

func (rn *run) notStarted(app App, parent context.Context) AppOutcome {
	o := AppOutcome{App: app, Started: rn.now(), Ended: rn.now()}
	if parent.Err() != nil {
		o.Result = ResultCancelled
	} else {
		o.Result, o.Reason = ResultSkipped, ReasonRunAborted
	}
	rn.emit(Event{Kind: EventAppEnded, App: app, Result: o.Result, Reason: o.Reason, AppOutcome: &o})
	return o
}

// lockApp waits for the app's cross-run lock until ctx ends or the run's
// window closes (on the runner's clock, which may be scaled or fake).
func (rn *run) lockApp(ctx context.Context, appID string) (func(), error) {
	lockCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if rn.r.clock().Sleep(lockCtx, rn.deadline.Sub(rn.now())) == nil {
			cancel()
		}
	}()
	return rn.r.AppLocks.Lock(lockCtx, appID)
}

// rollApp takes a global slot and rolls one app.
func (rn *run) rollApp(ctx, parent context.Context, app App) AppOutcome {
	if err := rn.r.AppLimit.Acquire(ctx); err != nil {
		return rn.notStarted(app, parent)
	}
	defer rn.r.AppLimit.Release()
	if rn.r.AppLocks != nil {
		// Another run rolling the same app would interleave batches and
		// break min_ready: wait for it, but only within this run's window.
		release, err := rn.lockApp(ctx, app.ID)
		if err != nil {
			if parent.Err() == nil && !rn.now().Before(rn.deadline) {
				o := AppOutcome{App: app, Result: ResultDeadlineExceeded, Started: rn.now(), Ended: rn.now(),
					Message: "another run held the app until this run's window ended"}
				rn.emit(Event{Kind: EventAppEnded, App: app, Result: o.Result, AppOutcome: &o})
				return o
			}
			return rn.notStarted(app, parent)
		}
		defer release()
	}
	a := &appRun{run: rn, app: app, parent: parent, prior: rn.priors[app.ID],
		log: rn.log.With("app", app.ID, "app_name", app.Name)}
	a.roll(ctx)
	return a.out
}

// resolve turns the schedule's selectors into apps, deduplicated, in
// selector order. A selector that fails (app not found, no match) becomes a
// failed outcome; an account error or a cancelled ctx is returned.
func (rn *run) resolve(ctx context.Context, bound time.Time) ([]App, []AppOutcome, error) {
	var apps []App
	var failed []AppOutcome
	seen := map[string]bool{}
	add := func(app App) {
		if app.Region == "" {
			app.Region = rn.s.Region
		}
		if seen[app.ID] {
			return // two selectors naming one app: restart it once
		}
		seen[app.ID] = true
		apps = append(apps, app)
		rn.log.Info("app resolved", "app", app.ID, "app_name", app.Name)
		rn.emit(Event{Kind: EventAppResolved, App: app})
	}
	fail := func(app App, reason string, err error) {
		o := AppOutcome{App: app, Result: ResultFailed, Reason: reason, Started: rn.now(), Ended: rn.now()}
		if err != nil {
			o.Code, o.Message = CodeOf(err), errMessage(err)
		}
		rn.log.Warn("selector failed", "app", app.ID, "app_name", app.Name, "reason", reason, "error", err)
		failed = append(failed, o)
		if rn.known[appKey(app)] {
			return // Resume: the journal has its outcome, or its batches are finished below
		}
		rn.emit(Event{Kind: EventAppEnded, App: app, Result: o.Result, Reason: o.Reason, AppOutcome: &failed[len(failed)-1]})
	}
	for _, sel := range rn.s.Apps {
		if sel.AppID != "" {
			app, err := retry(ctx, rn, bound, func(ctx context.Context) (App, error) {
				return rn.api.DescribeApplication(ctx, sel.AppID)
			})
			if err := fatalToRun(ctx, err); err != nil {
				return apps, failed, err
			}
			if err != nil {
				fail(App{ID: sel.AppID, Region: rn.s.Region}, "", err)
				continue
			}
			if app.ID == "" {
				app.ID = sel.AppID
			}
			add(app)
			continue
		}
		all, err := retry(ctx, rn, bound, func(ctx context.Context) ([]App, error) {
			return rn.api.ListApplications(ctx, sel.NamespaceID)
		})
		if err := fatalToRun(ctx, err); err != nil {
			return apps, failed, err
		}
		pattern := App{Name: sel.AppName, NamespaceID: sel.NamespaceID, Region: rn.s.Region}
		if err != nil {
			fail(pattern, "", err)
			continue
		}
		n := 0
		for _, app := range all {
			if Selects(sel, app.Name) {
				if app.NamespaceID == "" {
					app.NamespaceID = sel.NamespaceID
				}
				add(app)
				n++
			}
		}
		if n == 0 {
			fail(pattern, CodeNoMatch, fmt.Errorf("no app of %s matches %q", sel.NamespaceID, sel.AppName))
		}
	}
	return apps, failed, nil
}

// Selects reports whether sel's name pattern matches name and none of its
// excludes does. A malformed pattern matches nothing.
func Selects(sel AppSelector, name string) bool {
	if ok, err := path.Match(sel.AppName, name); err != nil || !ok {
		return false
	}
	for _, ex := range sel.Exclude {
		if ok, err := path.Match(ex, name); err != nil || ok {
			return false // a malformed exclude excludes: never restart what was meant to be spared
		}
	}
	return true
}

// fatalToRun returns err when it ends the whole run: an account error or
// ctx ending.
func fatalToRun(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ClassOf(err) == ClassAccount {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func errMessage(err error) string {
	var se *SAEError
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return err.Error()
}

// aggregate is the run-level result rule documented on Runner.Run.
func aggregate(apps []AppOutcome) (Result, string) {
	count := map[Result]int{}
	restarted, firstFailed := 0, ""
	for _, a := range apps {
		count[a.Result]++
		restarted += len(a.Restarted)
		if a.Result == ResultFailed && firstFailed == "" {
			firstFailed = a.Reason
			if firstFailed == "" {
				firstFailed = a.Code
			}
		}
	}
	switch {
	case count[ResultCancelled] > 0:
		return ResultCancelled, ""
	case count[ResultFailed] > 0 && restarted > 0:
		return ResultPartial, firstFailed
	case count[ResultFailed] > 0:
		return ResultFailed, firstFailed
	case count[ResultNeedsConfirmation] > 0:
		return ResultNeedsConfirmation, ""
	case count[ResultDeadlineExceeded] > 0:
		return ResultDeadlineExceeded, ""
	case count[ResultPartial] > 0:
		return ResultPartial, ""
	case count[ResultSkipped] == len(apps):
		reason := ""
		for i, a := range apps {
			if i == 0 {
				reason = a.Reason
			} else if a.Reason != reason {
				reason = ""
				break
			}
		}
		return ResultSkipped, reason
	}
	return ResultSuccess, ""
}

// Plan computes what Run would do now, with read-only SAE calls only
// (DescribeApplication, ListApplications, DescribeApplicationStatus,
// ListInstances). Per-app problems are in the plan; the error is non-nil
// only when no plan can be made (no SAE client, an account error, ctx).
func (r *Runner) Plan(ctx context.Context, s Schedule, now time.Time) (RunPlan, error) {
	rn := r.newRun(s, now)
	plan := RunPlan{Schedule: s.Name, At: now, Policy: rn.p}
	api, err := r.SAE(s.Region)
	if err != nil {
		return plan, fmt.Errorf("plan %s: %w", s.Name, err)
	}
	rn.api = api
	bound := rn.now().Add(time.Minute) // a plan is interactive: give retries a minute
	apps, failed, err := rn.resolve(ctx, bound)
	if err != nil {
		return plan, fmt.Errorf("plan %s: %w", s.Name, err)
	}
	for _, f := range failed {
		plan.Apps = append(plan.Apps, AppPlan{App: f.App, Result: f.Result, Reason: f.Reason, Code: f.Code, Message: f.Message})
	}
	for _, app := range apps {
		ap, err := rn.planApp(ctx, app, bound, now)
		if err != nil {
			return plan, fmt.Errorf("plan %s: %w", s.Name, err)
		}
		plan.Apps = append(plan.Apps, ap)
	}
	return plan, nil
}

func (rn *run) planApp(ctx context.Context, app App, bound, now time.Time) (AppPlan, error) {
	refused := func(err error) (AppPlan, error) {
		if err := fatalToRun(ctx, err); err != nil {
			return AppPlan{}, err
		}
		if ClassOf(err) == ClassNotDeployed {
			return AppPlan{App: app, Result: ResultSkipped, Reason: ReasonNotDeployed, Code: CodeOf(err), Message: errMessage(err)}, nil
		}
		return AppPlan{App: app, Result: ResultFailed, Code: CodeOf(err), Message: errMessage(err)}, nil
	}
	st, err := retry(ctx, rn, bound, func(ctx context.Context) (AppStatus, error) {
		return rn.api.DescribeApplicationStatus(ctx, app.ID)
	})
	if err != nil {
		return refused(err)
	}
	if st.CurrentStatus == AppStopped {
		return AppPlan{App: app, Result: ResultSkipped, Reason: ReasonAppStopped, Message: "the app is stopped"}, nil
	}
	inst, err := retry(ctx, rn, bound, func(ctx context.Context) ([]Instance, error) {
		return rn.api.ListInstances(ctx, app.ID)
	})
	if err != nil {
		return refused(err)
	}
	if neverDeployed(st, inst) {
		return AppPlan{App: app, Result: ResultSkipped, Reason: ReasonNotDeployed, Message: neverDeployedMsg}, nil
	}
	p := PlanApp(app, inst, rn.p, now)
	if st.LastChangeOrderRunning {
		p.Warnings = append(p.Warnings, fmt.Sprintf("change order %s is running now: a run would wait up to lock_wait %s", st.LastChangeOrderID, rn.p.LockWait))
	}
	return p, nil
}

// PreflightResult is one Preflight check: a selector of a schedule and what
// SAE said.
type PreflightResult struct {
	Schedule string
	Target   string // the selector: an app ID or namespace/pattern
	Err      error  // nil when the read worked
}

// Preflight proves credentials and permissions with one read-only call per
// distinct selector (DescribeApplication for an app ID, ListApplications for
// a namespace), without retries. Errors are in the results, never returned.
func (r *Runner) Preflight(ctx context.Context, schedules []Schedule) []PreflightResult {
	var out []PreflightResult
	seen := map[string]bool{}
	for _, s := range schedules {
		api, err := r.SAE(s.Region)
		for _, sel := range s.Apps {
			key := s.Region + "\x00" + sel.AppID + "\x00" + sel.NamespaceID
			if seen[key] {
				continue
			}
			seen[key] = true
			res := PreflightResult{Schedule: s.Name, Target: sel.String(), Err: err}
			if err == nil {
				if sel.AppID != "" {
					_, res.Err = api.DescribeApplication(ctx, sel.AppID)
				} else {
					_, res.Err = api.ListApplications(ctx, sel.NamespaceID)
				}
			}
			out = append(out, res)
		}
	}
	return out
}
