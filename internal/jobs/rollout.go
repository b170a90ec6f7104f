package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// appRun is one app's rollout within a run.
type appRun struct {
	*run
	app    App
	parent context.Context // the caller's context: tells a cancel from an account abort
	log    *slog.Logger
	out    AppOutcome
	plan   AppPlan
	prior  *appPrior // Resume: the app's recorded batches; nil in Run

	current     []Instance      // the latest listing
	ours        map[string]bool // change orders this rollout created: the only ones it may abort
	history     []time.Duration // durations of this app's succeeded change orders
	lastEnd     time.Time       // when the previous batch ended (its change order's end if SAE says)
	endUnknown  bool            // SAE did not say when the last change order ended
	failed      int             // failed batches
	lastCode    string          // the last failed batch's code
	journalLost bool            // a change order the journal could not record: stop after it
	maxIndex    int             // the highest batch index given (journal rows are per index)
	total       int             // batches of the app, for events: recorded and planned
	queued      int             // planned batches after the current one
}

// pendingBatch is a batch still to roll. index 0 means not numbered yet
// (numbered when it starts); row is the instances its journal row already
// holds (a resumed batch never carried out), nil when it has none.
type pendingBatch struct {
	index int
	ids   []string
	row   []string
}

// roll runs the app to an outcome in a.out. ctx ending means: no new batch,
// the in-flight change order is watched within the grace period.
func (a *appRun) roll(ctx context.Context) {
	a.ours = map[string]bool{}
	a.history = a.r.Durations.Of(a.app.ID)
	a.out = AppOutcome{App: a.app, Started: a.now()}
	a.log.Info("app started")
	a.emit(Event{Kind: EventAppStarted, App: a.app})
	defer a.finish()

	var pending []pendingBatch
	var ok bool
	if a.prior != nil {
		pending, ok = a.recover(ctx)
	} else {
		pending, ok = a.start(ctx)
	}
	if !ok {
		return
	}
	for i, b := range pending {
		a.queued = len(pending) - i - 1
		if i > 0 || len(a.out.Batches) > 0 {
			a.failpoint(FailpointBetweenBatches)
			// The pause runs from the previous batch's end as SAE reports it, so
			// the lag of the look that saw it end is not added to the pause.
			if wait := min(a.p.Pause, a.p.Pause-a.now().Sub(a.lastEnd)); wait > 0 {
				if err := a.r.clock().Sleep(ctx, wait); err != nil {
					a.endErr(ctx, err)
					return
				}
			}
		}
		if ctx.Err() != nil {
			a.endErr(ctx, ctx.Err())
			return
		}
		if !a.now().Before(a.deadline) {
			next := b.index
			if next == 0 {
				next = a.maxIndex + 1
			}
			a.end(ResultDeadlineExceeded, "", "", "the window ended before batch "+fmt.Sprint(next))
			return
		}
		if stop := a.batch(ctx, b); stop {
			return
		}
	}
	if a.failed > 0 {
		a.end(ResultPartial, a.lastCode, "", fmt.Sprintf("%d batches failed", a.failed))
		return
	}
	a.end(ResultSuccess, "", "", "")
}

// start plans the app as Run does and returns its batches; ok=false when
// the app's result is set.
func (a *appRun) start(ctx context.Context) (pending []pendingBatch, ok bool) {
	st, err := retry(ctx, a.run, a.deadline, func(ctx context.Context) (AppStatus, error) {
		return a.api.DescribeApplicationStatus(ctx, a.app.ID)
	})
	if err != nil {
		a.endErr(ctx, err)
		return nil, false
	}
	if st.CurrentStatus == AppStopped {
		a.end(ResultSkipped, ReasonAppStopped, "", "the app is stopped")
		return nil, false
	}
	// Plan after someone else's change order ends: a deploy replaces the
	// instances a plan made during it would name.
	if st.LastChangeOrderRunning && !a.waitLock(ctx, st.LastChangeOrderID) {
		return nil, false
	}
	inst, err := retry(ctx, a.run, a.deadline, func(ctx context.Context) ([]Instance, error) {
		return a.api.ListInstances(ctx, a.app.ID)
	})
	if err != nil {
		a.endErr(ctx, err)
		return nil, false
	}
	a.current = inst
	if neverDeployed(st, inst) {
		a.end(ResultSkipped, ReasonNotDeployed, "", neverDeployedMsg)
		return nil, false
	}
	a.plan = PlanApp(a.app, inst, a.p, a.now())
	for _, w := range a.plan.Warnings {
		a.log.Warn("plan", "warning", w)
	}
	if !a.plan.Runnable() {
		a.end(a.plan.Result, a.plan.Reason, a.plan.Code, a.plan.Message)
		return nil, false
	}
	a.log.Info("planned", "instances", len(a.plan.Instances), "batches", len(a.plan.Batches), "batch_size", a.plan.BatchSize)
	for _, b := range a.plan.Batches {
		pending = append(pending, pendingBatch{ids: b})
	}
	a.total = len(pending)
	return pending, true
}

// end sets the app's result unless one is set.
func (a *appRun) end(res Result, reason, code, msg string) {
	if a.out.Result != "" {
		return
	}
	a.out.Result, a.out.Reason, a.out.Code, a.out.Message = res, reason, code, msg
}

// endErr ends the app on an SAE call's error or ctx ending.
func (a *appRun) endErr(ctx context.Context, err error) {
	switch {
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		a.end(ResultCancelled, "", "", "")
	case ClassOf(err) == ClassAccount:
		a.accountAbort(err)
		a.end(ResultFailed, "", CodeOf(err), errMessage(err))
	case ClassOf(err) == ClassNotDeployed:
		a.end(ResultSkipped, ReasonNotDeployed, CodeOf(err), errMessage(err))
	case ClassOf(err) == ClassRetryable && !a.now().Before(a.deadline):
		a.end(ResultDeadlineExceeded, "", CodeOf(err), errMessage(err))
	default:
		a.end(ResultFailed, "", CodeOf(err), errMessage(err))
	}
}

// accountAbort ends the whole run: every app stops starting batches.
func (a *appRun) accountAbort(err error) {
	a.mu.Lock()
	if a.accountErr == nil {
		a.accountErr = err
	}
	a.mu.Unlock()
	a.log.Error("account error ends the run", "error", err)
	a.abort(err)
}

// finish fills the lists and timings and reports the app's end.
func (a *appRun) finish() {
	if a.out.Result == ResultCancelled && a.parent.Err() == nil {
		// Not the caller's cancel: another app's account error ended the run.
		a.out.Result, a.out.Reason = ResultFailed, ReasonRunAborted
	}
	if a.out.Result != ResultSuccess && a.out.Result != ResultSkipped || len(a.out.Vanished) > 0 {
		done := map[string]bool{}
		for _, id := range a.out.Restarted {
			done[id] = true
		}
		for _, id := range a.out.Vanished {
			done[id] = true
		}
		for _, id := range a.plan.Instances {
			if !done[id] {
				a.out.NotRestarted = append(a.out.NotRestarted, id)
			}
		}
	}
	a.out.Ended = a.now()
	a.log.Info("app ended", "result", a.out.Result, "reason", a.out.Reason, "code", a.out.Code,
		"message", a.out.Message, "restarted", len(a.out.Restarted), "not_restarted", len(a.out.NotRestarted))
	a.emit(Event{Kind: EventAppEnded, App: a.app, Result: a.out.Result, Reason: a.out.Reason,
		Duration: a.out.Ended.Sub(a.out.Started), AppOutcome: &a.out})
}

// progressed reports whether any batch of the app restarted instances.
func (a *appRun) progressed() bool { return len(a.out.Restarted) > 0 }

// waitLock waits for someone else's change order (holder, if known) to
// release the app, polling DescribeApplicationStatus, up to LockWait and
// never past the window. It reports true when the app is free; otherwise the
// app's result is set (lock_busy, deadline_exceeded, cancelled or an error).
func (a *appRun) waitLock(ctx context.Context, holder string) bool {
	start := a.now()
	until := start.Add(a.p.LockWait)
	a.log.Info("lock wait started", "change_order", holder, "lock_wait", a.p.LockWait)
	a.emit(Event{Kind: EventLockWaitStarted, App: a.app, ChangeOrderID: holder})
	ended := func(reason string) {
		d := a.now().Sub(start)
		a.log.Info("lock wait ended", "change_order", holder, "waited", d, "reason", reason)
		a.emit(Event{Kind: EventLockWaitEnded, App: a.app, ChangeOrderID: holder, Duration: d, Reason: reason})
	}
	for attempt := 0; ; attempt++ {
		now := a.now()
		if !now.Before(a.deadline) {
			ended("window")
			a.end(ResultDeadlineExceeded, "", "", "the window ended waiting for change order "+holder)
			return false
		}
		if !now.Before(until) {
			ended(ReasonLockBusy)
			msg := fmt.Sprintf("change order %s held the app past lock_wait %s", holder, a.p.LockWait)
			if a.progressed() {
				a.end(ResultPartial, ReasonLockBusy, "", msg)
			} else {
				a.end(ResultSkipped, ReasonLockBusy, "", msg)
			}
			return false
		}
		d := min(LockPollInterval(attempt), until.Sub(now), a.deadline.Sub(now))
		if err := a.r.clock().Sleep(ctx, d); err != nil {
			ended("cancelled")
			a.endErr(ctx, err)
			return false
		}
		st, err := retry(ctx, a.run, minTime(until, a.deadline), func(ctx context.Context) (AppStatus, error) {
			return a.api.DescribeApplicationStatus(ctx, a.app.ID)
		})
		switch {
		case err == nil && !st.LastChangeOrderRunning:
			ended("free")
			return true
		case err == nil:
			holder = st.LastChangeOrderID
		case ClassOf(err) != ClassRetryable:
			ended("error")
			a.endErr(ctx, err)
			return false
		}
	}
}

// relist refreshes the listing (after a lock wait or a stale-instances
// refusal) within the window.
func (a *appRun) relist(ctx context.Context) error {
	inst, err := retry(ctx, a.run, a.deadline, func(ctx context.Context) ([]Instance, error) {
		return a.api.ListInstances(ctx, a.app.ID)
	})
	if err == nil {
		a.current = inst
	}
	return err
}

// present keeps the IDs of ids that the latest listing still has, recording
// the others as vanished: a planned instance that is gone was replaced by
// someone else and its replacement is fresh.
func (a *appRun) present(ids []string) []string {
	listed := make(map[string]bool, len(a.current))
	for _, in := range a.current {
		listed[in.ID] = true
	}
	var keep []string
	for _, id := range ids {
		if listed[id] {
			keep = append(keep, id)
		} else if !slices.Contains(a.out.Vanished, id) {
			a.out.Vanished = append(a.out.Vanished, id)
			a.log.Info("planned instance vanished", "instance", id)
		}
	}
	return keep
}

// batchFailed records a failed batch and reports whether the budget is spent
// (the app then ends failed).
func (a *appRun) batchFailed(code, msg string) (stop bool) {
	a.failed++
	a.lastCode = code
	if a.failed > a.p.MaxFailedBatches {
		a.end(ResultFailed, code, "", msg)
		return true
	}
	a.log.Warn("batch failed within budget", "code", code, "message", msg, "failed_batches", a.failed)
	return false
}

// batch runs one planned batch: submit, change-order wait, health gate.
// It reports whether the app must stop (its result is then set).
func (a *appRun) batch(ctx context.Context, b pendingBatch) (stop bool) {
	if b.index == 0 {
		// Numbered even if it turns out empty, so numbers match the plan's.
		a.maxIndex++
		b.index = a.maxIndex
	}
	ids := a.present(b.ids)
	if len(ids) == 0 {
		a.log.Info("batch empty: every instance vanished", "batch", b.index)
		return false
	}
	bo := BatchOutcome{Index: b.index, Submitted: a.now()}
	record := func(res Result, code string) {
		bo.Index, bo.Instances, bo.Result, bo.Code, bo.Ended = b.index, ids, res, code, a.now()
		a.out.Batches = append(a.out.Batches, bo)
	}

	sub := a.submit(ctx, &b, &ids)
	log := a.log.With("batch", b.index)
	switch sub.kind {
	case submitEmptied:
		log.Info("batch empty: every instance vanished while waiting")
		return false
	case submitStop:
		if a.out.Result == ResultFailed {
			code := a.out.Reason
			if code == "" {
				code = a.out.Code
			}
			record(ResultFailed, code)
		}
		return true
	case submitFailed:
		record(ResultFailed, sub.code)
		log.Warn("batch failed before a change order", "code", sub.code, "message", sub.msg)
		return a.batchFailed(sub.code, sub.msg)
	}
	return a.follow(ctx, log.With("change_order", sub.co), b.index, ids, sub.co, a.now(), sub.start, a.current)
}

// follow watches batch k's change order co (submitted at submitted, the
// batch started at start for batch_timeout) to its end, runs the health
// gate against the listing baseline, and records the batch. It reports
// whether the app must stop (its result is then set).
func (a *appRun) follow(ctx context.Context, log *slog.Logger, k int, ids []string, co string,
	submitted, start time.Time, baseline []Instance) (stop bool) {
	slack := a.p.Pause
	if a.queued == 0 || a.endUnknown {
		slack = 0
	}
	res, code, msg, stop := a.await(ctx, log, co, ids, baseline, submitted, start.Add(a.p.BatchTimeout), slack)
	a.out.Batches = append(a.out.Batches, BatchOutcome{Index: k, Instances: ids, ChangeOrderID: co,
		Result: res, Code: code, Submitted: submitted, Ended: a.now()})
	log.Info("batch ended", "result", res, "code", code, "message", msg)
	a.emit(Event{Kind: EventBatchEnded, App: a.app, Batch: k, Batches: a.total, Instances: ids,
		ChangeOrderID: co, Result: res, Reason: code, Duration: a.now().Sub(submitted)})
	if stop {
		return true
	}
	if res != ResultSuccess {
		return a.batchFailed(code, msg)
	}
	return false
}

type submitKind int

const (
	submitted     submitKind = iota // co is ours
	submitEmptied                   // every instance vanished: nothing to submit
	submitFailed                    // a failed batch (code, msg); the budget decides
	submitStop                      // the app's result is set
)

type submitResult struct {
	kind      submitKind
	co        string
	start     time.Time // the batch's start for batch_timeout
	code, msg string
}

// submit sends batch b's RestartInstances, handling the lock, retryable
// refusals and stale instance IDs; *ids shrinks to the instances still
// listed when SAE said some are gone or after a lock wait.
//
// Write-ahead: the batch's journal row (BatchPlanned) names exactly the
// instances submitted, since recovery looks for a change order with exactly
// those targets. It is written once per batch index: a resubmit of the same
// instances (after a refusal, or of a resumed batch never carried out) goes
// under the same row; when the instances changed, the batch takes the next
// index and a new row (b.index is updated).
func (a *appRun) submit(ctx context.Context, b *pendingBatch, ids *[]string) submitResult {
	res := submitResult{kind: submitStop, start: a.now()}
	staleRetried := false
	log := a.log.With("batch", b.index)
	for attempt := 0; ; {
		if ctx.Err() != nil {
			a.endErr(ctx, ctx.Err())
			return res
		}
		if !a.now().Before(a.deadline) {
			a.end(ResultDeadlineExceeded, "", "", fmt.Sprintf("the window ended before batch %d was accepted", b.index))
			return res
		}
		if b.row != nil && !sameSet(b.row, *ids) {
			// The row names other instances: a crash after this submit would be
			// resolved against them and miss it.
			a.maxIndex++
			a.total++
			log.Info("batch renumbered: its instances changed", "to", a.maxIndex)
			b.index, b.row = a.maxIndex, nil
			log = a.log.With("batch", b.index)
		}
		rec := BatchRecord{Schedule: a.s.Name, ScheduledAt: a.at, App: a.app, Batch: b.index, Instances: *ids, Planned: a.now()}
		if b.row == nil {
			// Crash window: from here until ChangeOrderRecorded the journal knows
			// the batch but not its change order; recovery asks SAE
			// (FindRestartChangeOrder) before it submits again.
			if err := a.journal().BatchPlanned(ctx, rec); err != nil {
				log.Error("journal refused the batch", "error", err)
				a.end(ResultFailed, CodeJournal, "", err.Error())
				return res
			}
			b.row = slices.Clone(*ids)
		}
		a.failpoint(FailpointBeforeSubmit)
		// A cancel mid-call would leave the submit ambiguous: let it finish.
		id, err := a.api.RestartInstances(context.WithoutCancel(ctx), a.app.ID, *ids)
		if err == nil {
			a.ours[id] = true
			// Crash window: the change order exists, the journal does not know it.
			a.failpoint(FailpointAfterSubmit)
			if jerr := a.journal().ChangeOrderRecorded(context.WithoutCancel(ctx), rec, id); jerr != nil {
				// The change order exists whatever the journal says: watch it, then stop.
				log.Error("journal lost a change order", "change_order", id, "error", jerr)
				a.journalLost = true
			}
			log.Info("batch submitted", "change_order", id, "instances", len(*ids))
			a.out.ChangeOrders = append(a.out.ChangeOrders, id)
			a.emit(Event{Kind: EventBatchSubmitted, App: a.app, Batch: b.index, Batches: a.total,
				Instances: *ids, ChangeOrderID: id})
			res.kind, res.co = submitted, id
			return res
		}
		log.Warn("submit refused", "error", err)
		switch ClassOf(err) {
		case ClassRetryable:
			d := a.backoff(attempt, err)
			attempt++
			if a.now().Add(d).After(a.deadline) {
				a.end(ResultDeadlineExceeded, "", CodeOf(err), errMessage(err))
				return res
			}
			if serr := a.r.clock().Sleep(ctx, d); serr != nil {
				a.endErr(ctx, serr)
				return res
			}
		case ClassLock:
			if !a.waitLock(ctx, "") {
				return res
			}
			// The holder may have replaced instances: a fresh listing is the
			// batch's baseline and drops the vanished.
			if err := a.relist(ctx); err != nil {
				a.endErr(ctx, err)
				return res
			}
			if *ids = a.present(*ids); len(*ids) == 0 {
				res.kind = submitEmptied
				return res
			}
			res.start = a.now() // the lock wait is not the batch's: batch_timeout starts again
		case ClassStaleInstances:
			if staleRetried {
				res.kind, res.code, res.msg = submitFailed, CodeOf(err), errMessage(err)
				return res
			}
			staleRetried = true
			if err := a.relist(ctx); err != nil {
				a.endErr(ctx, err)
				return res
			}
			if *ids = a.present(*ids); len(*ids) == 0 {
				res.kind = submitEmptied
				return res
			}
		case ClassAmbiguous:
			// The client could not tell whether SAE took it: never resubmit.
			res.kind, res.code, res.msg = submitFailed, CodeAmbiguous, errMessage(err)
			return res
		case ClassNotDeployed:
			if a.progressed() {
				a.end(ResultFailed, "", CodeOf(err), errMessage(err))
			} else {
				a.end(ResultSkipped, ReasonNotDeployed, CodeOf(err), errMessage(err))
			}
			return res
		default:
			a.endErr(ctx, err)
			return res
		}
	}
}

// await watches our change order co to its end and runs the health gate.
// It returns the batch's result, code and message, and whether the app must
// stop (its result is then set).
func (a *appRun) await(ctx context.Context, log *slog.Logger, co string, ids []string, baseline []Instance,
	submitted, batchDeadline time.Time, slack time.Duration) (res Result, code, msg string, stop bool) {
	a.lastEnd = a.now()
	c, verdict, cancelled, err := a.watch(ctx, log, co, submitted, batchDeadline, slack)
	a.lastEnd = a.now()
	if err != nil {
		a.end(ResultFailed, "", CodeOf(err), fmt.Sprintf("change order %s: %s", co, errMessage(err)))
		return ResultFailed, CodeOf(err), errMessage(err), true
	}
	if cancelled {
		a.end(ResultCancelled, "", "", "")
	}
	pastBound := !a.now().Before(batchDeadline)
	switch verdict {
	case VerdictSucceeded:
		a.out.Restarted = append(a.out.Restarted, ids...)
		d, known := a.duration(c, submitted)
		a.history = append(a.history, d)
		if known {
			a.r.Durations.Add(a.app.ID, d)
		}
		if a.endUnknown = !known; known {
			a.lastEnd = minTime(submitted.Add(d), a.now())
		}
		if cancelled {
			return ResultSuccess, "", "health gate skipped: cancelled", true
		}
	case VerdictFailed:
		msg = fmt.Sprintf("change order %s ended with status %d: %s", co, c.Status, c.ErrorMessage)
		if cancelled || a.journalLost {
			a.end(ResultFailed, CodeChangeOrderFailed, "", msg)
			return ResultFailed, CodeChangeOrderFailed, msg, true
		}
		return ResultFailed, CodeChangeOrderFailed, msg, false
	case VerdictAbnormal:
		// SubStatus 1 never ends by itself and holds SAE's lock: waiting
		// longer only blocks the next deploy.
		msg = a.onStuck(log, co, "abnormal (SubStatus 1)")
		if cancelled {
			a.out.Message = msg
		}
		a.end(ResultFailed, CodeStuck, "", msg)
		return ResultFailed, CodeStuck, msg, true
	case VerdictNeedsHuman:
		if !pastBound {
			// Cancelled before batch_timeout: leave it to the human.
			msg = fmt.Sprintf("change order %s waits for a confirmation (status %d)", co, c.Status)
			a.out.Message = msg
			return ResultNeedsConfirmation, CodeStuck, msg, true
		}
		msg = a.onStuck(log, co, fmt.Sprintf("waiting for a confirmation (status %d) past batch_timeout", c.Status))
		a.end(ResultNeedsConfirmation, CodeStuck, "", msg)
		return ResultNeedsConfirmation, CodeStuck, msg, true
	default: // still in progress at the bound
		msg = fmt.Sprintf("change order %s still running (status %d) after batch_timeout %s: left to finish", co, c.Status, a.p.BatchTimeout)
		if cancelled {
			msg = fmt.Sprintf("change order %s still running (status %d) when the grace period ended", co, c.Status)
			a.out.Message = msg
		}
		a.end(ResultFailed, CodeBatchTimeout, "", msg)
		return ResultFailed, CodeBatchTimeout, msg, true
	}
	if a.journalLost {
		a.end(ResultFailed, CodeJournal, "", "the journal lost change order "+co)
		return ResultSuccess, "", "", true
	}

	a.failpoint(FailpointHealthGate)
	ok, why, err := a.gate(ctx, baseline, ids, batchDeadline)
	switch {
	case err != nil && ctx.Err() != nil:
		a.end(ResultCancelled, "", "", "")
		return ResultSuccess, "", "health gate interrupted: cancelled", true
	case err != nil:
		a.end(ResultFailed, "", CodeOf(err), errMessage(err))
		return ResultFailed, CodeOf(err), errMessage(err), true
	case !ok:
		return ResultFailed, CodeHealthGate, why, false
	}
	return ResultSuccess, "", "", false
}

// duration is how long the change order took: on SAE's clock when it says
// when it ended (known), else by our observation. Anchoring SAE's duration
// at our submit time keeps clock skew out of it.
func (a *appRun) duration(c ChangeOrder, submitted time.Time) (d time.Duration, known bool) {
	if !c.FinishTime.IsZero() && !c.CreateTime.IsZero() && c.FinishTime.After(c.CreateTime) {
		return c.FinishTime.Sub(c.CreateTime), true
	}
	return a.now().Sub(submitted), false
}

// watch polls DescribeChangeOrder until co is terminal or abnormal, or the
// bound passes. When ctx ends it keeps watching, detached from ctx, for the
// grace period (cancelled reports that). err is an SAE error that ended the
// watch (retries spent up to the bound, or a fatal refusal).
func (a *appRun) watch(ctx context.Context, log *slog.Logger, co string, submitted, bound time.Time, slack time.Duration) (c ChangeOrder, v Verdict, cancelled bool, err error) {
	wctx := ctx
	enterGrace := func() {
		a.checkCrash() // a crashed process watches nothing
		cancelled = true
		wctx = context.WithoutCancel(ctx)
		bound = minTime(bound, a.now().Add(a.r.grace()))
		log.Warn("cancelled: watching the change order to its end", "grace", a.r.grace())
	}
	v = VerdictInProgress
	for polls := 0; ; {
		now := a.now()
		d := a.r.poller().NextPoll(PollState{History: a.history, Elapsed: now.Sub(submitted), Polls: polls, Slack: slack})
		d = min(d, bound.Sub(now)) // look once more at the bound
		if d > 0 {
			if serr := a.r.clock().Sleep(wctx, d); serr != nil {
				if !cancelled {
					enterGrace()
					continue
				}
				return c, v, cancelled, serr
			}
		}
		got, gerr := retry(wctx, a.run, bound, func(ctx context.Context) (ChangeOrder, error) {
			return a.api.DescribeChangeOrder(ctx, co)
		})
		if gerr != nil {
			if !cancelled && ctx.Err() != nil {
				enterGrace()
				continue
			}
			return c, v, cancelled, gerr
		}
		polls++
		if polls == 1 {
			a.failpoint(FailpointChangeOrderWait)
		}
		c, v = got, ClassifyChangeOrder(got)
		log.Debug("change order polled", "status", c.Status, "sub_status", c.SubStatus, "verdict", v, "polls", polls)
		if v.Terminal() || v == VerdictAbnormal {
			return c, v, cancelled, nil
		}
		if !a.now().Before(bound) {
			return c, v, cancelled, nil
		}
	}
}

// onStuck applies OnStuck to our own stuck change order co and says what
// was done.
func (a *appRun) onStuck(log *slog.Logger, co, why string) string {
	if !a.ours[co] {
		// Unreachable by construction; the guard makes "never abort what we
		// did not create" a local fact.
		return fmt.Sprintf("change order %s is %s: not ours, left", co, why)
	}
	if a.p.OnStuck == StuckLeave {
		log.Warn("stuck change order left", "why", why)
		return fmt.Sprintf("change order %s is %s: left (on_stuck: leave)", co, why)
	}
	bctx := context.WithoutCancel(a.parent)
	_, err := retry(bctx, a.run, a.now().Add(time.Minute), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, a.api.AbortChangeOrder(ctx, co)
	})
	if err != nil {
		log.Error("aborting our stuck change order failed", "why", why, "error", err)
		return fmt.Sprintf("change order %s is %s: abort failed: %s", co, why, errMessage(err))
	}
	log.Warn("stuck change order aborted", "why", why)
	return fmt.Sprintf("change order %s is %s: aborted (on_stuck: abort)", co, why)
}

// gate re-lists the instances until JudgeHealth passes or the bound
// passes. ok=false with err=nil is a failed gate (why says what failed).
func (a *appRun) gate(ctx context.Context, start []Instance, ids []string, bound time.Time) (ok bool, why string, err error) {
	for attempt := 0; ; attempt++ {
		inst, err := retry(ctx, a.run, bound, func(ctx context.Context) ([]Instance, error) {
			return a.api.ListInstances(ctx, a.app.ID)
		})
		if err != nil {
			return false, "", err
		}
		a.current = inst
		if ok, why = JudgeHealth(start, ids, inst); ok {
			return true, "", nil
		}
		d := gateInterval(attempt)
		if a.now().Add(d).After(bound) {
			return false, why, nil
		}
		a.log.Debug("health gate not passed yet", "why", why, "wait", d)
		if err := a.r.clock().Sleep(ctx, d); err != nil {
			return false, "", err
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
