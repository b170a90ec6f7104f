package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

// fakeSAE is an in-memory SAE driven by a fake clock. Change orders end
// lazily: every call first applies what the clock says has happened.
type fakeSAE struct {
	mu       sync.Mutex
	clk      *clock.Fake
	apps     map[string]*fakeApp
	order    []string // app IDs in creation order
	cos      map[string]*fakeCO
	seq      int
	calls    map[string]int
	errs     map[string][]error // by "Action" or "Action/appID", popped per call
	restarts []fakeRestart
	aborted  []string
	maxBusy  int // most apps with one of our change orders running at once
}

type fakeApp struct {
	App
	stopped     bool
	instances   []Instance
	restartTime func(n int) time.Duration // duration of our n-th change order (default 60 s)
	replace     bool                      // a restart gives instances new IDs
	healthDelay time.Duration             // restarted instances are NotCheckedYet this long
	end         func(n int) (status, sub int)
	readyAt     map[string]time.Time
	ours        int
	lists       int
	vanish      string // this instance disappears after the first listing
}

type fakeCO struct {
	id, app    string
	targets    []string
	created    time.Time
	ends       time.Time
	final, sub int
	ours       bool
	applied    bool
	aborted    bool
}

type fakeRestart struct {
	app, co string
	ids     []string
}

var t0 = time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)

func newFake() *fakeSAE {
	return &fakeSAE{clk: clock.NewFake(t0), apps: map[string]*fakeApp{}, cos: map[string]*fakeCO{},
		calls: map[string]int{}, errs: map[string][]error{}}
}

// addApp adds an app with n healthy instances created a day apart, oldest first.
func (f *fakeSAE) addApp(id, name string, n int) *fakeApp {
	a := &fakeApp{App: App{ID: id, Name: name, NamespaceID: "cn-hangzhou:prod"}, readyAt: map[string]time.Time{}}
	for i := range n {
		a.instances = append(a.instances, Instance{ID: fmt.Sprintf("%s-i%02d", id, i), ContainerStatus: "Running",
			HealthStatus: "Healthy", CreateTime: t0.Add(-time.Duration(n-i) * 24 * time.Hour)})
	}
	f.apps[id] = a
	f.order = append(f.order, id)
	return a
}

// holdLock starts someone else's change order on app until the clock passes d.
func (f *fakeSAE) holdLock(app string, d time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("deploy-%d", f.seq)
	now := f.clk.Now()
	f.cos[id] = &fakeCO{id: id, app: app, created: now, ends: now.Add(d), final: COSucceeded}
	return id
}

// restartedBefore records a change order of ours on app that a crashed run
// submitted at created and that runs for d, as RestartInstances would have
// (it counts in assertSafe), and returns its ID.
func (f *fakeSAE) restartedBefore(app string, ids []string, created time.Time, d time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	f.apps[app].ours++
	co := &fakeCO{id: fmt.Sprintf("co-%d", f.seq), app: app, targets: slices.Clone(ids), created: created,
		ends: created.Add(d), final: COSucceeded, ours: true}
	f.cos[co.id] = co
	f.restarts = append(f.restarts, fakeRestart{app: app, co: co.id, ids: slices.Clone(ids)})
	f.tick()
	return co.id
}

func (f *fakeSAE) failWith(key string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[key] = append(f.errs[key], errs...)
}

func saeErr(class ErrorClass, action, code string) error {
	return &SAEError{Class: class, Action: action, Code: code, Message: code + " happened"}
}

// enter counts the call, applies elapsed change orders and pops an injected error.
func (f *fakeSAE) enter(action, app string) error {
	f.calls[action]++
	f.calls[action+"/"+app]++ // per app (or change order); totalCalls skips keys with "/"
	f.tick()
	for _, key := range []string{action + "/" + app, action} {
		if q := f.errs[key]; len(q) > 0 {
			f.errs[key] = q[1:]
			return q[0]
		}
	}
	return nil
}

func (co *fakeCO) status(now time.Time) (int, int) {
	switch {
	case co.aborted:
		return COAborted, 0
	case now.Before(co.ends):
		return CORunning, 0
	}
	return co.final, co.sub
}

func (co *fakeCO) active(now time.Time) bool {
	s, _ := co.status(now)
	return s != COSucceeded && s != COFailed && s != COAborted && s != COSystemFailed
}

// tick applies the restarts of our change orders that succeeded by now.
func (f *fakeSAE) tick() {
	now := f.clk.Now()
	for _, co := range f.cos {
		if s, _ := co.status(now); !co.ours || co.applied || s != COSucceeded {
			continue
		}
		co.applied = true
		a := f.apps[co.app]
		for i, in := range a.instances {
			if !slices.Contains(co.targets, in.ID) {
				continue
			}
			if a.replace {
				in.ID += "-r"
			}
			in.CreateTime, in.Restarts = co.ends, in.Restarts+1
			a.instances[i] = in
			a.readyAt[in.ID] = co.ends.Add(a.healthDelay)
		}
	}
	busy := 0
	for _, co := range f.cos {
		if co.ours && co.active(now) {
			busy++
		}
	}
	f.maxBusy = max(f.maxBusy, busy)
}

func (f *fakeSAE) app(id string) (*fakeApp, error) {
	a, ok := f.apps[id]
	if !ok {
		return nil, saeErr(ClassFatal, "Describe", "InvalidApplication.NotFound")
	}
	return a, nil
}

func (f *fakeSAE) ListApplications(_ context.Context, ns string) ([]App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ListApplications", ns); err != nil {
		return nil, err
	}
	var out []App
	for _, id := range f.order {
		if a := f.apps[id]; a.NamespaceID == ns {
			out = append(out, a.App)
		}
	}
	return out, nil
}

func (f *fakeSAE) DescribeApplication(_ context.Context, id string) (App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DescribeApplication", id); err != nil {
		return App{}, err
	}
	a, err := f.app(id)
	if err != nil {
		return App{}, err
	}
	return a.App, nil
}

func (f *fakeSAE) DescribeApplicationStatus(_ context.Context, id string) (AppStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DescribeApplicationStatus", id); err != nil {
		return AppStatus{}, err
	}
	a, err := f.app(id)
	if err != nil {
		return AppStatus{}, err
	}
	st := AppStatus{CurrentStatus: AppRunning, RunningInstances: len(a.instances)}
	if a.stopped {
		st.CurrentStatus = AppStopped
	}
	for _, co := range f.cos {
		if co.app == id && co.active(f.clk.Now()) {
			st.LastChangeOrderID, st.LastChangeOrderRunning = co.id, true
		}
	}
	return st, nil
}

func (f *fakeSAE) ListInstances(_ context.Context, id string) ([]Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ListInstances", id); err != nil {
		return nil, err
	}
	a, err := f.app(id)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(a.instances)
	if a.lists++; a.lists == 1 && a.vanish != "" {
		a.instances = slices.DeleteFunc(a.instances, func(in Instance) bool { return in.ID == a.vanish })
	}
	for i := range out {
		if at, ok := a.readyAt[out[i].ID]; ok && f.clk.Now().Before(at) {
			out[i].HealthStatus = "NotCheckedYet"
		}
	}
	return out, nil
}

func (f *fakeSAE) RestartInstances(_ context.Context, id string, ids []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("RestartInstances", id); err != nil {
		return "", err
	}
	a, err := f.app(id)
	if err != nil {
		return "", err
	}
	now := f.clk.Now()
	for _, co := range f.cos {
		if co.app == id && co.active(now) {
			return "", saeErr(ClassLock, "RestartInstances", "Application.ChangerOrderRunning")
		}
	}
	for _, want := range ids {
		if !slices.ContainsFunc(a.instances, func(in Instance) bool { return in.ID == want }) {
			return "", saeErr(ClassStaleInstances, "RestartInstances", "InvalidParameter.Obviously")
		}
	}
	a.ours++
	f.seq++
	co := &fakeCO{id: fmt.Sprintf("co-%d", f.seq), app: id, targets: slices.Clone(ids), created: now, final: COSucceeded, ours: true}
	d := 60 * time.Second
	if a.restartTime != nil {
		d = a.restartTime(a.ours)
	}
	co.ends = now.Add(d)
	if a.end != nil {
		co.final, co.sub = a.end(a.ours)
	}
	f.cos[co.id] = co
	f.restarts = append(f.restarts, fakeRestart{app: id, co: co.id, ids: slices.Clone(ids)})
	f.tick()
	return co.id, nil
}

func (f *fakeSAE) DescribeChangeOrder(_ context.Context, id string) (ChangeOrder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["poll/"+id]++
	if err := f.enter("DescribeChangeOrder", id); err != nil {
		return ChangeOrder{}, err
	}
	co, ok := f.cos[id]
	if !ok {
		return ChangeOrder{}, saeErr(ClassFatal, "DescribeChangeOrder", "InvalidChangeOrder.NotFound")
	}
	s, sub := co.status(f.clk.Now())
	out := ChangeOrder{ID: co.id, AppID: co.app, Status: s, SubStatus: sub, CoTypeCode: "CoRestartInstances",
		Targets: co.targets, CreateTime: co.created}
	if !co.active(f.clk.Now()) {
		out.FinishTime = co.ends
	}
	return out, nil
}

func (f *fakeSAE) ListChangeOrders(_ context.Context, app string, _ int) ([]ChangeOrderSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ListChangeOrders", app); err != nil {
		return nil, err
	}
	var out []ChangeOrderSummary
	for _, co := range f.cos {
		if co.app == app {
			s, _ := co.status(f.clk.Now())
			out = append(out, ChangeOrderSummary{ID: co.id, Status: s, CreateTime: co.created})
		}
	}
	return out, nil
}

func (f *fakeSAE) FindRestartChangeOrder(_ context.Context, app string, ids []string, notBefore time.Time) (ChangeOrder, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("FindRestartChangeOrder", app); err != nil {
		return ChangeOrder{}, false, err
	}
	for _, co := range f.cos {
		if co.app == app && co.ours && slices.Equal(co.targets, ids) && !co.created.Before(notBefore) {
			return ChangeOrder{ID: co.id, AppID: app, Targets: co.targets}, true, nil
		}
	}
	return ChangeOrder{}, false, nil
}

func (f *fakeSAE) AbortChangeOrder(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("AbortChangeOrder", id); err != nil {
		return err
	}
	co, ok := f.cos[id]
	if !ok {
		return saeErr(ClassFatal, "AbortChangeOrder", "InvalidChangeOrder.NotFound")
	}
	co.aborted = true
	f.aborted = append(f.aborted, id)
	return nil
}

var _ SAE = (*fakeSAE)(nil)

// assertSafe checks the invariants every rollout must keep: no instance
// restarted twice in the run, no change order larger than maxBatch, and
// only our own change orders aborted.
func (f *fakeSAE) assertSafe(t *testing.T, maxBatch int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]string{}
	for _, r := range f.restarts {
		if len(r.ids) > maxBatch {
			t.Errorf("change order %s restarted %d instances, want <= %d", r.co, len(r.ids), maxBatch)
		}
		for _, id := range r.ids {
			if prev, ok := seen[id]; ok {
				t.Errorf("instance %s restarted twice: %s and %s", id, prev, r.co)
			}
			seen[id] = r.co
		}
	}
	for _, id := range f.aborted {
		if !f.cos[id].ours {
			t.Errorf("aborted change order %s, which the daemon did not create", id)
		}
	}
}

func (f *fakeSAE) restartCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.restarts)
}

func (f *fakeSAE) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, c := range f.calls {
		if !strings.Contains(k, "/") { // "poll/<co>" counts looks per change order
			n += c
		}
	}
	return n
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu       sync.Mutex
	events   []Event
	hook     func(Event)
	resolved map[string]bool // apps resolved
	ended    map[string]bool // resolved apps that ended
	changed  chan struct{}   // closed and replaced on every event
}

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	if r.resolved == nil {
		r.resolved, r.ended = map[string]bool{}, map[string]bool{}
	}
	switch e.Kind {
	case EventAppResolved:
		r.resolved[e.App.ID] = true
	case EventAppEnded:
		if r.resolved[e.App.ID] {
			r.ended[e.App.ID] = true
		}
	}
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(e)
	}
}

// state returns how many apps may be rolling now (resolved, not ended, at
// most conc) and a channel closed at the next event.
func (r *recorder) state(conc int) (int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return min(conc, len(r.resolved)-len(r.ended)), r.changed
}

// kindsOf returns the events of kind k.
func (r *recorder) kindsOf(k EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) kinds() []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []EventKind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

// runFake runs s against f, stepping the fake clock whenever the run sleeps,
// and returns the outcome. ctx may be cancelled by the caller.
func runFake(t *testing.T, ctx context.Context, f *fakeSAE, s Schedule, rec *recorder, opts ...func(*Runner)) RunOutcome {
	t.Helper()
	return driveFake(t, f, s, rec, func(r *Runner) RunOutcome { return r.Run(ctx, s, f.clk.Now()) }, opts...)
}

// driveFake calls call (Run or Resume) on a Runner of f, stepping the fake
// clock whenever the rollout sleeps, and returns the outcome.
func driveFake(t *testing.T, f *fakeSAE, s Schedule, rec *recorder, call func(*Runner) RunOutcome, opts ...func(*Runner)) RunOutcome {
	t.Helper()
	if rec == nil {
		rec = &recorder{}
	}
	r := &Runner{SAE: StaticSAE(f), Clock: f.clk, Observer: rec, Rand: func() float64 { return 0.5 }}
	for _, o := range opts {
		o(r)
	}
	done := make(chan RunOutcome, 1)
	go func() { done <- call(r) }()
	stepCtx, stop := context.WithCancel(context.Background())
	defer stop()
	stepped := make(chan struct{})
	go func() {
		defer close(stepped)
		// Advance only when every app that may be rolling sleeps on the
		// clock, so concurrent apps see the same fake time.
		for steps := 0; steps < 100000; {
			n, changed := rec.state(max(s.Policy.AppConcurrency, 1))
			waitCtx, cancel := context.WithCancel(stepCtx)
			go func() {
				select {
				case <-changed:
					cancel()
				case <-waitCtx.Done():
				}
			}()
			err := f.clk.BlockUntil(waitCtx, max(n, 1))
			cancel()
			if stepCtx.Err() != nil {
				return
			}
			if err == nil {
				f.clk.AdvanceToNext()
				steps++
			}
		}
	}()
	select {
	case out := <-done:
		stop()
		<-stepped
		return out
	case <-time.After(30 * time.Second):
		t.Fatal("run did not end within 30 s of real time")
		return RunOutcome{}
	}
}

func schedule(p Policy, apps ...AppSelector) Schedule {
	return Schedule{Name: "nightly", Region: "cn-hangzhou", Apps: apps, Policy: p}
}

func byID(ids ...string) []AppSelector {
	var out []AppSelector
	for _, id := range ids {
		out = append(out, AppSelector{AppID: id})
	}
	return out
}

// testPolicy is a small, fast policy: batches of 2, 30 s pauses.
func testPolicy() Policy {
	p := DefaultPolicy()
	p.BatchSize = Quantity{Value: 2}
	return p
}
