package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Prior is what the journal knew of an interrupted run (a daemon killed
// mid-run): the input of Resume and Interrupted. jobs does not read the
// journal itself; the daemon builds a Prior from its store.
type Prior struct {
	// Started is when the interrupted run started (zero: unknown). The
	// resumed run's outcome keeps it, and instances created after it are
	// never restarted when an app's plan is unknown.
	Started time.Time
	// Plans is the run's plan as recorded when it began (one AppPlan per
	// app); it tells which instances the run meant to restart, so that
	// instances that appeared since (replacements made by our own restarts)
	// are not restarted. May be empty; see Resume.
	Plans []AppPlan
	// Ended are the apps that ended, with their outcome: never touched again.
	Ended []AppOutcome
	// Batches are the recorded batches of the apps, any order.
	Batches []PriorBatch
}

// PriorBatch is one recorded batch of an interrupted run: its write-ahead
// row, what SAE returned for it, and its end if it ended.
type PriorBatch struct {
	AppID     string
	Index     int       // 1-based, per app
	Instances []string  // the instances the batch submits (or submitted)
	Submitted time.Time // when the row was written, just before RestartInstances
	// ChangeOrderID is SAE's answer, "" when none was recorded: the crash
	// came before the submit, during it, or before its record.
	ChangeOrderID string
	Ended         bool // the batch has a result
	Result        Result
	Code          string
	EndedAt       time.Time
}

// The failpoints: the named crash points of a rollout at which
// Runner.Failpoint is called. A crash test makes the process exit there and
// asserts that Resume restarts every instance exactly once.
const (
	// FailpointBeforeSubmit: after Journal.BatchPlanned, before
	// RestartInstances (each attempt).
	FailpointBeforeSubmit = "before-submit"
	// FailpointAfterSubmit: RestartInstances returned a change order, not
	// yet given to Journal.ChangeOrderRecorded.
	FailpointAfterSubmit = "after-submit"
	// FailpointChangeOrderWait: waiting on a change order, after its first poll.
	FailpointChangeOrderWait = "co-wait"
	// FailpointHealthGate: the change order succeeded, before the health
	// gate's first listing.
	FailpointHealthGate = "health-gate"
	// FailpointBetweenBatches: a batch ended, before the pause that precedes
	// the next one.
	FailpointBetweenBatches = "between-batches"
)

// Failpoints lists the failpoints in the order a batch meets them.
var Failpoints = []string{FailpointBeforeSubmit, FailpointAfterSubmit, FailpointChangeOrderWait,
	FailpointHealthGate, FailpointBetweenBatches}

// ErrCrash is the panic value with which a Failpoint simulates, in-process,
// the daemon dying at that point (tests). Run and Resume recover it and stop
// at once: the goroutine that panicked makes no further call, every other
// app of the run stops at its next SAE call or journal write (which are not
// made), no further event is emitted, and the outcome is interrupted with
// reason ReasonCrash. The journal then holds what a killed process leaves.
var ErrCrash = errors.New("jobs: simulated crash")

// Resume finishes a run that a crash interrupted while its window is still
// open (scheduledAt + Window after now; the caller checks, and closes runs
// past it with Interrupted). It never restarts an instance twice and never
// submits a batch twice:
//
//   - an app in prior.Ended keeps its outcome and is not touched;
//   - for an app with recorded batches, every batch not ended is resolved
//     before anything is submitted: a recorded change order is re-attached
//     (DescribeChangeOrder to its end, the verdict and the health gate as in
//     Run), never resubmitted; a batch without one is looked for with
//     FindRestartChangeOrder(app, instances, submitted): found, it is
//     recorded (Journal.ChangeOrderRecorded) and re-attached; positively
//     absent, it was never carried out and is submitted again under its own
//     journal row; if SAE cannot tell, the app fails with reason
//     CodeUnresolved and nothing more is submitted for it;
//   - then the app's planned instances (prior.Plans) that no batch covered
//     and that are still listed — replacements are not — are batched per
//     the policy and rolled as in Run, numbered after the recorded batches.
//     Without a plan for the app, the listed instances created before the
//     run started stand for it;
//   - apps not started run as in Run.
//
// The outcome covers the whole run (ended apps included) and starts at
// prior.Started. Events, journal writes and failpoints are as in Run.
func (r *Runner) Resume(ctx context.Context, s Schedule, scheduledAt time.Time, prior Prior) RunOutcome {
	return r.run(ctx, s, scheduledAt, &prior)
}

// Interrupted is the outcome of an interrupted run that is not resumed (its
// window has ended), made without any SAE call: the ended apps keep their
// outcome; every other app the run knew of (by its plan or its batches) is
// interrupted, with the instances of its successful batches as Restarted,
// its recorded change orders and batches (batches not ended are
// interrupted), and as NotRestarted its planned instances no batch named.
// A batch with no change order recorded may or may not have been submitted:
// its instances are in neither list and the app's Message says so.
func Interrupted(s Schedule, scheduledAt time.Time, prior Prior, now time.Time) RunOutcome {
	out := RunOutcome{Schedule: s.Name, ScheduledAt: scheduledAt, Started: prior.Started, Ended: now,
		Result: ResultInterrupted, Apps: priorEnded(&prior)}
	if out.Started.IsZero() {
		out.Started = scheduledAt
	}
	ended := map[string]bool{}
	for _, o := range prior.Ended {
		ended[appKey(o.App)] = true
	}
	type left struct {
		app     App
		plan    []string
		batches []PriorBatch
	}
	var order []string
	apps := map[string]*left{}
	get := func(app App) *left {
		if l := apps[app.ID]; l != nil {
			return l
		}
		l := &left{app: app}
		apps[app.ID] = l
		order = append(order, app.ID)
		return l
	}
	for _, p := range prior.Plans {
		if p.App.ID != "" && !ended[p.App.ID] {
			get(p.App).plan = p.Instances
		}
	}
	for _, b := range prior.Batches {
		if b.AppID != "" && !ended[b.AppID] {
			l := get(App{ID: b.AppID, Region: s.Region})
			l.batches = append(l.batches, b)
		}
	}
	for _, id := range order {
		l := apps[id]
		sortBatches(l.batches)
		o := AppOutcome{App: l.app, Result: ResultInterrupted, Started: out.Started, Ended: now}
		named := map[string]bool{}
		var unsure, inFlight []string
		for _, b := range l.batches {
			bo := BatchOutcome{Index: b.Index, Instances: b.Instances, ChangeOrderID: b.ChangeOrderID,
				Submitted: b.Submitted, Result: ResultInterrupted}
			if b.Ended {
				bo.Result, bo.Code, bo.Ended = b.Result, b.Code, b.EndedAt
			}
			o.Batches = append(o.Batches, bo)
			if b.ChangeOrderID != "" && !slices.Contains(o.ChangeOrders, b.ChangeOrderID) {
				o.ChangeOrders = append(o.ChangeOrders, b.ChangeOrderID)
			}
			for _, in := range b.Instances {
				named[in] = true
			}
			switch {
			case b.Ended && b.Result == ResultSuccess:
				o.Restarted = append(o.Restarted, b.Instances...)
			case !b.Ended && b.ChangeOrderID == "":
				unsure = append(unsure, fmt.Sprint(b.Index))
			case !b.Ended:
				inFlight = append(inFlight, b.ChangeOrderID)
			}
		}
		for _, in := range l.plan {
			if !named[in] {
				o.NotRestarted = append(o.NotRestarted, in)
			}
		}
		msg := []string{"the run's window ended before it could resume"}
		if len(inFlight) > 0 {
			msg = append(msg, "change orders in flight at the crash: "+strings.Join(inFlight, ", "))
		}
		if len(unsure) > 0 {
			msg = append(msg, "batches "+strings.Join(unsure, ", ")+" may have been submitted (no change order recorded)")
		}
		o.Message = strings.Join(msg, "; ")
		out.Apps = append(out.Apps, o)
	}
	return out
}

// appPrior is one app's part of a Prior.
type appPrior struct {
	plan    *AppPlan     // nil: unknown
	batches []PriorBatch // by index
	started time.Time    // when the interrupted run started
}

func appKey(a App) string {
	if a.ID != "" {
		return a.ID
	}
	return a.NamespaceID + "\x00" + a.Name // a selector that matched nothing
}

func priorEnded(p *Prior) []AppOutcome {
	if p == nil {
		return nil
	}
	return slices.Clone(p.Ended)
}

func sortBatches(b []PriorBatch) {
	sort.SliceStable(b, func(i, j int) bool { return b[i].Index < b[j].Index })
}

// adoptPrior merges the interrupted run's record into a resumed run. It
// returns the apps to roll (those with recorded batches first: their change
// orders may be running now), the selectors' failures not already recorded,
// and the apps that ended, which are not touched.
func (rn *run) adoptPrior(p Prior, resolved []App, failed []AppOutcome) (apps []App, fails, ended []AppOutcome) {
	done := map[string]bool{}
	for _, o := range p.Ended {
		done[appKey(o.App)] = true
	}
	ended = slices.Clone(p.Ended)
	plans := map[string]AppPlan{}
	for _, pl := range p.Plans {
		if pl.App.ID != "" {
			plans[pl.App.ID] = pl
		}
	}
	known := map[string]App{}
	for _, a := range resolved {
		known[a.ID] = a
	}
	for _, o := range p.Ended {
		// The failure budget counts the whole run's rolled apps; as in Run, a
		// selector that failed (not resolvable now either) does not count.
		if _, rolled := known[o.App.ID]; rolled && o.Result == ResultFailed {
			rn.failedApps++
		}
	}
	started := p.Started
	if started.IsZero() {
		started = rn.at
	}
	rn.priors = map[string]*appPrior{}
	for _, b := range p.Batches {
		if b.AppID == "" || done[b.AppID] {
			continue
		}
		ap := rn.priors[b.AppID]
		if ap == nil {
			app, ok := known[b.AppID]
			pl, planned := plans[b.AppID]
			if !ok {
				// No longer selected (or not resolvable now): its batches are
				// still this run's to finish.
				app = App{ID: b.AppID}
				if planned {
					app = pl.App
				}
			}
			if app.Region == "" {
				app.Region = rn.s.Region
			}
			ap = &appPrior{started: started}
			if planned {
				ap.plan = &pl
			}
			rn.priors[b.AppID] = ap
			apps = append(apps, app)
		}
		ap.batches = append(ap.batches, b)
	}
	for _, ap := range rn.priors {
		sortBatches(ap.batches)
	}
	for _, a := range resolved {
		if !done[a.ID] && rn.priors[a.ID] == nil {
			apps = append(apps, a)
		}
	}
	for _, f := range failed {
		if !done[appKey(f.App)] && (f.App.ID == "" || rn.priors[f.App.ID] == nil) {
			fails = append(fails, f)
		}
	}
	return apps, fails, ended
}

// recover resolves the app's recorded batches (see Resume) and returns the
// batches still to roll; ok=false when the app's result is set.
func (a *appRun) recover(ctx context.Context) (pending []pendingBatch, ok bool) {
	pr := a.prior
	a.log.Info("app resumed", "recorded_batches", len(pr.batches))
	inst, err := retry(ctx, a.run, a.deadline, func(ctx context.Context) ([]Instance, error) {
		return a.api.ListInstances(ctx, a.app.ID)
	})
	if err != nil {
		a.endErr(ctx, err)
		return nil, false
	}
	a.current = inst
	a.plan = a.priorPlan(inst)
	for _, b := range pr.batches {
		a.maxIndex = max(a.maxIndex, b.Index)
	}
	a.total = a.maxIndex

	covered := map[string]bool{}  // named by a batch that ended or has a change order
	attached := map[string]bool{} // change orders watched already
	var absent []PriorBatch       // positively never carried out
	for _, b := range pr.batches {
		co := b.ChangeOrderID
		switch {
		case b.Ended:
			for _, id := range b.Instances {
				covered[id] = true
			}
			if a.endedBatch(b) {
				return nil, false
			}
			continue
		case co == "":
			found, ok := a.resolveSubmit(ctx, b)
			if !ok {
				return nil, false
			}
			if found == "" {
				absent = append(absent, b)
				continue
			}
			co = found
		}
		for _, id := range b.Instances {
			covered[id] = true
		}
		if attached[co] {
			continue // two rows found the same change order: watch it once
		}
		attached[co] = true
		if a.reattach(ctx, b, co) {
			return nil, false
		}
	}
	return a.remaining(absent, covered)
}

// priorPlan is the app's plan in the interrupted run, with the instances of
// its recorded batches; without a recorded plan, the listed instances created
// before the run started (never a replacement made by the run).
func (a *appRun) priorPlan(inst []Instance) AppPlan {
	var plan AppPlan
	if a.prior.plan != nil {
		plan = *a.prior.plan
		plan.Instances = slices.Clone(plan.Instances)
	} else {
		var old []Instance
		for _, in := range inst {
			// Unknown age could be a replacement: leave it.
			if !in.CreateTime.IsZero() && in.CreateTime.Before(a.prior.started) {
				old = append(old, in)
			}
		}
		p := PlanApp(a.app, old, a.p, a.prior.started)
		plan = AppPlan{App: a.app, Instances: p.Instances, Total: p.Total}
	}
	for _, b := range a.prior.batches {
		for _, id := range b.Instances {
			if !slices.Contains(plan.Instances, id) {
				plan.Instances = append(plan.Instances, id)
			}
		}
	}
	return plan
}

// endedBatch accounts for a batch that ended before the crash, as the
// interrupted run did; it reports whether the app must stop (the failure
// budget was spent).
func (a *appRun) endedBatch(b PriorBatch) (stop bool) {
	a.out.Batches = append(a.out.Batches, BatchOutcome{Index: b.Index, Instances: b.Instances,
		ChangeOrderID: b.ChangeOrderID, Result: b.Result, Code: b.Code, Submitted: b.Submitted, Ended: b.EndedAt})
	if b.ChangeOrderID != "" && !slices.Contains(a.out.ChangeOrders, b.ChangeOrderID) {
		a.out.ChangeOrders = append(a.out.ChangeOrders, b.ChangeOrderID)
	}
	if b.EndedAt.After(a.lastEnd) {
		a.lastEnd = b.EndedAt
	}
	if b.Result == ResultSuccess {
		a.out.Restarted = append(a.out.Restarted, b.Instances...)
		return false
	}
	return a.batchFailed(b.Code, fmt.Sprintf("batch %d ended %s before the restart", b.Index, b.Result))
}

// resolveSubmit asks SAE whether batch b, recorded without a change order,
// was submitted. It returns the change order found ("" when SAE positively
// has none); ok=false when the app's result is set (SAE cannot tell: the app
// fails unresolved rather than risk a second restart).
func (a *appRun) resolveSubmit(ctx context.Context, b PriorBatch) (co string, ok bool) {
	type found struct {
		co ChangeOrder
		ok bool
	}
	log := a.log.With("batch", b.Index)
	f, err := retry(ctx, a.run, a.deadline, func(ctx context.Context) (found, error) {
		co, ok, err := a.api.FindRestartChangeOrder(ctx, a.app.ID, b.Instances, b.Submitted)
		return found{co, ok}, err
	})
	switch {
	case err != nil && (ctx.Err() != nil || ClassOf(err) == ClassAccount):
		a.endErr(ctx, err)
		return "", false
	case err != nil:
		msg := fmt.Sprintf("batch %d was recorded without its change order and SAE cannot tell whether it was submitted: %s", b.Index, errMessage(err))
		log.Error("unrecorded batch unresolved", "error", err)
		a.end(ResultFailed, CodeUnresolved, CodeOf(err), msg)
		return "", false
	case !f.ok:
		log.Info("unrecorded batch was never submitted")
		return "", true
	}
	co = f.co.ID
	log.Info("unrecorded change order found", "change_order", co)
	rec := BatchRecord{Schedule: a.s.Name, ScheduledAt: a.at, App: a.app, Batch: b.Index, Instances: b.Instances, Planned: b.Submitted}
	if jerr := a.journal().ChangeOrderRecorded(context.WithoutCancel(ctx), rec, co); jerr != nil {
		// It exists whatever the journal says: watch it, then stop.
		log.Error("journal lost a change order", "change_order", co, "error", jerr)
		a.journalLost = true
	}
	return co, true
}

// reattach watches our change order co of recorded batch b to its end and
// runs the health gate, as after a submit. It reports whether the app must stop.
func (a *appRun) reattach(ctx context.Context, b PriorBatch, co string) (stop bool) {
	log := a.log.With("batch", b.Index, "change_order", co)
	a.ours[co] = true
	if !slices.Contains(a.out.ChangeOrders, co) {
		a.out.ChangeOrders = append(a.out.ChangeOrders, co)
	}
	a.out.Reattached = append(a.out.Reattached, co)
	log.Info("change order re-attached", "instances", len(b.Instances))
	a.emit(Event{Kind: EventBatchReattached, App: a.app, Batch: b.Index, Batches: a.total,
		Instances: b.Instances, ChangeOrderID: co})
	submitted := b.Submitted
	if submitted.IsZero() {
		submitted = a.now()
	}
	return a.follow(ctx, log, b.Index, b.Instances, co, submitted, submitted, startListing(a.current, b.Instances, submitted))
}

// startListing rebuilds, from a listing made after batch ids was submitted,
// what the listing looked like before: instances created since the submit
// that the batch does not name are its replacements, and the batch's
// instances no longer listed were there. The health gate judges against it.
func startListing(now []Instance, ids []string, submitted time.Time) []Instance {
	var out []Instance
	listed := map[string]bool{}
	for _, in := range now {
		listed[in.ID] = true
		if !slices.Contains(ids, in.ID) && !in.CreateTime.IsZero() && !in.CreateTime.Before(submitted) {
			continue
		}
		out = append(out, in)
	}
	for _, id := range ids {
		if !listed[id] {
			out = append(out, Instance{ID: id, ContainerStatus: "Running"})
		}
	}
	return out
}

// remaining cuts the instances still to restart into batches: those of the
// batches never carried out first (they were next), then the plan's; none
// that a batch covered, only those still listed and not fresh. A batch that
// names exactly a never-carried-out batch's instances reuses its journal row.
func (a *appRun) remaining(absent []PriorBatch, covered map[string]bool) ([]pendingBatch, bool) {
	var order []string
	for _, b := range absent {
		order = append(order, b.Instances...)
	}
	order = append(order, a.plan.Instances...)
	var rest []string
	for _, id := range order {
		if !covered[id] && !slices.Contains(rest, id) {
			rest = append(rest, id)
		}
	}
	if rest = a.present(rest); len(rest) == 0 {
		return nil, true
	}
	p := PlanApp(a.app, a.current, a.p, a.now())
	if p.Result == ResultFailed {
		a.end(p.Result, p.Reason, p.Code, p.Message)
		return nil, false
	}
	rest = slices.DeleteFunc(rest, func(id string) bool { return !slices.Contains(p.Instances, id) })
	size := p.BatchSize
	if size < 1 {
		size = max(a.p.BatchSize.Of(p.Total), 1)
	}
	var pending []pendingBatch
	reused := map[int]bool{}
	fresh := 0
	for i := 0; i < len(rest); i += size {
		pb := pendingBatch{ids: slices.Clone(rest[i:min(i+size, len(rest))])}
		for _, b := range absent {
			if !reused[b.Index] && sameSet(b.Instances, pb.ids) {
				// The row exists and names these instances: a crash after this
				// submit is resolved against it.
				reused[b.Index] = true
				pb.index, pb.row = b.Index, b.Instances
				break
			}
		}
		if pb.index == 0 {
			fresh++
		}
		pending = append(pending, pb)
	}
	a.total = a.maxIndex + fresh
	a.log.Info("resumed plan", "instances", len(rest), "batches", len(pending), "batch_size", size)
	return pending, true
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// failpoint calls Runner.Failpoint. A simulated crash is marked before it
// unwinds the goroutine, so that nothing deferred on the way reports.
func (rn *run) failpoint(name string) {
	f := rn.r.Failpoint
	if f == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if v == any(ErrCrash) {
				rn.crash()
			}
			panic(v)
		}
	}()
	f(name)
}

// crash marks the run as crashed (ErrCrash) and cancels it, so every app
// stops at its next wait, SAE call or journal write.
func (rn *run) crash() {
	rn.crashed.Store(true)
	if rn.abort != nil {
		rn.abort(ErrCrash)
	}
}

// checkCrash re-raises a simulated crash in the calling goroutine.
func (rn *run) checkCrash() {
	if rn.crashed.Load() {
		panic(ErrCrash)
	}
}

// journal is the Runner's journal; with failpoints on, writes after a
// simulated crash are not made.
func (rn *run) journal() Journal {
	if rn.r.Failpoint == nil {
		return rn.r.journal()
	}
	return crashJournal{j: rn.r.journal(), rn: rn}
}

type crashJournal struct {
	j  Journal
	rn *run
}

func (c crashJournal) BatchPlanned(ctx context.Context, b BatchRecord) error {
	c.rn.checkCrash()
	return c.j.BatchPlanned(ctx, b)
}

func (c crashJournal) ChangeOrderRecorded(ctx context.Context, b BatchRecord, id string) error {
	c.rn.checkCrash()
	return c.j.ChangeOrderRecorded(ctx, b, id)
}

// crashGate is the run's SAE when failpoints are on: after a simulated
// crash no call reaches SAE.
type crashGate struct {
	SAE
	rn *run
}

func (g crashGate) ListApplications(ctx context.Context, ns string) ([]App, error) {
	g.rn.checkCrash()
	return g.SAE.ListApplications(ctx, ns)
}

func (g crashGate) DescribeApplication(ctx context.Context, id string) (App, error) {
	g.rn.checkCrash()
	return g.SAE.DescribeApplication(ctx, id)
}

func (g crashGate) DescribeApplicationStatus(ctx context.Context, id string) (AppStatus, error) {
	g.rn.checkCrash()
	return g.SAE.DescribeApplicationStatus(ctx, id)
}

func (g crashGate) ListInstances(ctx context.Context, id string) ([]Instance, error) {
	g.rn.checkCrash()
	return g.SAE.ListInstances(ctx, id)
}

func (g crashGate) RestartInstances(ctx context.Context, id string, ids []string) (string, error) {
	g.rn.checkCrash()
	return g.SAE.RestartInstances(ctx, id, ids)
}

func (g crashGate) DescribeChangeOrder(ctx context.Context, id string) (ChangeOrder, error) {
	g.rn.checkCrash()
	return g.SAE.DescribeChangeOrder(ctx, id)
}

func (g crashGate) ListChangeOrders(ctx context.Context, id string, status int) ([]ChangeOrderSummary, error) {
	g.rn.checkCrash()
	return g.SAE.ListChangeOrders(ctx, id, status)
}

func (g crashGate) FindRestartChangeOrder(ctx context.Context, id string, ids []string, notBefore time.Time) (ChangeOrder, bool, error) {
	g.rn.checkCrash()
	return g.SAE.FindRestartChangeOrder(ctx, id, ids, notBefore)
}

func (g crashGate) AbortChangeOrder(ctx context.Context, id string) error {
	g.rn.checkCrash()
	return g.SAE.AbortChangeOrder(ctx, id)
}
