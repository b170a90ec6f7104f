package daemon

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// WriteSummary prints a run's outcome for people: one line for the run and
// one per app, with what was restarted and, when it did not succeed, why.
func WriteSummary(w io.Writer, out jobs.RunOutcome) {
	dur := out.Ended.Sub(out.Started).Round(time.Second)
	fmt.Fprintf(w, "run %s (scheduled %s): %s", out.Schedule, out.ScheduledAt.Format(time.RFC3339), out.Result)
	if out.Reason != "" {
		fmt.Fprintf(w, " (%s)", out.Reason)
	}
	fmt.Fprintf(w, " in %s\n", dur)
	for _, a := range out.Apps {
		name := a.App.ID
		if a.App.Name != "" {
			name = a.App.Name + " (" + a.App.ID + ")"
		}
		fmt.Fprintf(w, "  %s: %s", name, a.Result)
		var why []string
		for _, s := range []string{a.Reason, a.Code, a.Message} {
			if s != "" {
				why = append(why, s)
			}
		}
		if len(why) > 0 {
			fmt.Fprintf(w, " [%s]", strings.Join(why, ": "))
		}
		fmt.Fprintf(w, "; restarted %d in %d batches", len(a.Restarted), len(a.Batches))
		if len(a.NotRestarted) > 0 {
			fmt.Fprintf(w, "; not restarted %d", len(a.NotRestarted))
		}
		if len(a.ChangeOrders) > 0 {
			fmt.Fprintf(w, "; change orders %s", strings.Join(a.ChangeOrders, ","))
		}
		fmt.Fprintln(w)
	}
}

// Progress returns an Observer that prints a run's steps for people
// (`scheduler trigger`, `scheduler demo`).
func Progress(w io.Writer) jobs.Observer {
	return &progress{w: w}
}

type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *progress) Observe(e jobs.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	app := e.App.ID
	if e.App.Name != "" {
		app = e.App.Name
	}
	ts := e.Time.Format("15:04:05")
	switch e.Kind {
	case jobs.EventRunStarted:
		fmt.Fprintf(p.w, "%s %s: run started (scheduled %s)\n", ts, e.Schedule, e.ScheduledAt.Format(time.RFC3339))
	case jobs.EventAppResolved:
		fmt.Fprintf(p.w, "%s %s: app %s (%s)\n", ts, e.Schedule, app, e.App.ID)
	case jobs.EventLockWaitStarted:
		holder := ""
		if e.ChangeOrderID != "" {
			holder = " held by change order " + e.ChangeOrderID
		}
		fmt.Fprintf(p.w, "%s %s: %s: waiting for the app's change-order lock%s\n", ts, e.Schedule, app, holder)
	case jobs.EventLockWaitEnded:
		fmt.Fprintf(p.w, "%s %s: %s: lock wait over after %s\n", ts, e.Schedule, app, e.Duration.Round(time.Second))
	case jobs.EventBatchSubmitted:
		fmt.Fprintf(p.w, "%s %s: %s: batch %d/%d submitted (%d instances, change order %s)\n", ts, e.Schedule, app, e.Batch, e.Batches, len(e.Instances), e.ChangeOrderID)
	case jobs.EventBatchEnded:
		fmt.Fprintf(p.w, "%s %s: %s: batch %d/%d %s after %s\n", ts, e.Schedule, app, e.Batch, e.Batches, e.Result, e.Duration.Round(time.Second))
	case jobs.EventAppEnded:
		if a := e.AppOutcome; a != nil {
			fmt.Fprintf(p.w, "%s %s: %s: %s %s\n", ts, e.Schedule, app, a.Result, strings.TrimSpace(a.Reason+" "+a.Code))
		}
	case jobs.EventRunEnded:
		if e.Run != nil {
			fmt.Fprintf(p.w, "%s %s: run ended: %s\n", ts, e.Schedule, e.Run.Result)
		}
	}
}
