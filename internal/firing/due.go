package firing

import (
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// MaxMissed bounds the missed fires Missed and Decide enumerate and return,
// like the Kubernetes CronJob controller's 100: beyond it they report TooMany
// and list only the latest MaxMissed.
const MaxMissed = 100

// Missed returns what to do with the fires in (lastScheduled, now] — the fires
// that came due while nobody acted on them, e.g. while the daemon was down.
// The most recent one is returned as run if it is at most startingDeadline old
// (now - At <= startingDeadline; a deadline of 0 lets only an on-time fire
// run); every other due fire, oldest first, is in missed, to be recorded as
// missed (reason missed_deadline, or dst_gap for a Skip fire). tooMany reports
// more than MaxMissed due fires; then only the latest is considered for run and
// missed holds only the latest MaxMissed. A zero lastScheduled means no history:
// nothing is due. At most one fire is ever returned to run: never a storm of
// catch-ups.
func Missed(spec *Spec, lastScheduled, now time.Time, startingDeadline time.Duration) (run *Fire, missed []Fire, tooMany bool) {
	fires, tooMany := dueFires(spec, lastScheduled, now)
	if len(fires) == 0 {
		return nil, nil, tooMany
	}
	latest := fires[len(fires)-1]
	older := fires[:len(fires)-1]
	if now.Sub(latest.At) <= startingDeadline {
		return &latest, older, tooMany
	}
	missed = append(older, latest)
	if len(missed) > MaxMissed {
		missed = missed[len(missed)-MaxMissed:]
	}
	return nil, missed, tooMany
}

// dueFires returns the fires in (last, now], oldest first: all of them when
// there are at most MaxMissed+1, else the latest MaxMissed+1 with tooMany set.
func dueFires(spec *Spec, last, now time.Time) (fires []Fire, tooMany bool) {
	if spec == nil || last.IsZero() || !now.After(last) {
		return nil, false
	}
	const k = MaxMissed + 1
	fires = firesBetween(spec, last, now, k)
	if len(fires) < k {
		return fires, false
	}
	// At least k (more than MaxMissed) fires are due.
	return latestFires(spec, last, now, fires[k-1].At.Sub(last)), true
}

// latestFires returns the latest MaxMissed+1 fires in (last, now], of which
// there are at least that many; span is how long the first MaxMissed+1 took.
// It walks forward from a window before now that should hold about twice that
// many fires, widening the window when it holds too few; a window that holds
// far too many (fires much denser near now than after last) falls back to
// bisection. Either way the cost is bounded by a few thousand Next calls,
// however long the outage.
func latestFires(spec *Spec, last, now time.Time, span time.Duration) []Fire {
	const k = MaxMissed + 1
	const budget = 8 * k
	full := now.Sub(last)
	w := min(2*span, full)
	for {
		lo := last
		if w < full {
			lo = now.Add(-w)
		}
		var ring [k]Fire
		visited, exhausted := 0, false
		for after := lo; visited < budget; visited++ {
			f := spec.Next(after)
			if f.IsZero() || f.At.After(now) {
				exhausted = true
				break
			}
			ring[visited%k] = f
			after = f.At
		}
		switch {
		case !exhausted:
			return bisectLatest(spec, lo, now)
		case visited >= k:
			out := make([]Fire, 0, k)
			for i := range k {
				out = append(out, ring[(visited+i)%k])
			}
			return out
		case lo.Equal(last):
			// Unreachable: (last, now] holds at least k fires.
			return bisectLatest(spec, last, now)
		}
		w = min(4*w, full)
	}
}

// bisectLatest returns the latest MaxMissed+1 fires in (lo, now], of which
// there are at least that many. Fires fall on whole seconds, so it finds by
// bisection the last whole second L-1 before the (MaxMissed+1)-th latest fire
// L: the fires in (L-1, now] are then exactly the latest MaxMissed+1.
// count(t), the number of fires in (t, now] capped at MaxMissed+1, falls as t
// grows.
func bisectLatest(spec *Spec, lo, now time.Time) []Fire {
	const k = MaxMissed + 1
	l, h := lo.Unix(), now.Unix() // count(l) = k, count(h) = 0
	for h-l > 1 {
		mid := l + (h-l)/2
		if len(firesBetween(spec, time.Unix(mid, 0), now, k)) == k {
			l = mid
		} else {
			h = mid
		}
	}
	return firesBetween(spec, time.Unix(l, 0), now, k)
}

// firesBetween returns up to limit fires in (after, until], oldest first.
func firesBetween(spec *Spec, after, until time.Time, limit int) []Fire {
	var out []Fire
	for len(out) < limit {
		f := spec.Next(after)
		if f.IsZero() || f.At.After(until) {
			break
		}
		out = append(out, f)
		after = f.At
	}
	return out
}

// State is what the daemon knows of a schedule when it decides.
type State struct {
	// LastScheduled is the At of the latest fire already decided (run,
	// skipped or recorded missed); zero when the schedule has no history.
	LastScheduled time.Time
	// Running reports that a run of this schedule is still in progress.
	Running bool
}

// Action is what Decide says to do with the due fire.
type Action string

// The actions.
const (
	ActionNone Action = "none" // nothing is due
	ActionRun  Action = "run"  // start a run keyed by (schedule, Fire.At)
	ActionSkip Action = "skip" // record Fire as skipped with Reason
)

// Skipped is a fire recorded as not run, with its reason (a jobs.Reason*).
type Skipped struct {
	Fire   Fire
	Reason string
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Fire is the most recent due fire (zero for ActionNone).
	Fire Fire
	// Reason is why Fire is skipped: jobs.ReasonSuspended, ReasonDSTGap,
	// ReasonMissedDeadline or ReasonOverlap; empty unless ActionSkip.
	Reason string
	// Missed are the older due fires, oldest first, each with its reason
	// (suspended, dst_gap or missed_deadline); at most MaxMissed.
	Missed []Skipped
	// TooMany reports more than MaxMissed due fires (only the latest
	// MaxMissed+1 are in Fire and Missed): worth a warning about downtime or
	// clock skew.
	TooMany bool
	// LastScheduled is the State.LastScheduled to store once the decision is
	// recorded: the latest due fire's At, unchanged when nothing was due, now
	// when the state had no history.
	LastScheduled time.Time
	// Next is the first fire after now (after LastScheduled if the clock went
	// back): the daemon sleeps until Jitter(Next.At, …) and decides again.
	Next Fire
}

// Decide says what to do at now with the fires of spec that came due since
// st.LastScheduled. It acts on at most one fire, the most recent one; the
// reason a due fire does not run is, in this order: the schedule is suspended
// (suspended), it is a DST-gap fire of a dst: skip schedule (dst_gap), it is
// more than startingDeadline old (missed_deadline), the previous run is still
// going (overlap). Older due fires are listed in Missed. A zero
// st.LastScheduled means no history: nothing is due and LastScheduled becomes
// now, so a new schedule does not catch up on fires before it was seen.
func Decide(spec *Spec, st State, suspended bool, now time.Time, startingDeadline time.Duration) Decision {
	d := Decision{Action: ActionNone, LastScheduled: st.LastScheduled}
	if spec == nil {
		return d
	}
	if st.LastScheduled.IsZero() {
		d.LastScheduled = now
		d.Next = spec.Next(now)
		return d
	}
	// After a clock step backwards, fires up to LastScheduled were already
	// decided: wake for the first one after it, not for one decided before.
	d.Next = spec.Next(later(now, st.LastScheduled))
	fires, tooMany := dueFires(spec, st.LastScheduled, now)
	d.TooMany = tooMany
	if len(fires) == 0 {
		return d
	}
	latest := fires[len(fires)-1]
	d.Fire = latest
	d.LastScheduled = latest.At
	for _, f := range fires[:len(fires)-1] {
		reason := jobs.ReasonMissedDeadline
		switch {
		case suspended:
			reason = jobs.ReasonSuspended
		case f.Skip:
			reason = jobs.ReasonDSTGap
		}
		d.Missed = append(d.Missed, Skipped{Fire: f, Reason: reason})
	}
	d.Action = ActionSkip
	switch {
	case suspended:
		d.Reason = jobs.ReasonSuspended
	case latest.Skip:
		d.Reason = jobs.ReasonDSTGap
	case now.Sub(latest.At) > startingDeadline:
		d.Reason = jobs.ReasonMissedDeadline
	case st.Running:
		d.Reason = jobs.ReasonOverlap
	default:
		d.Action = ActionRun
	}
	return d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
