package firing

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// ErrNeverFires is returned (wrapped) by NewSpec for an expression that names
// no time within five years, such as "0 0 30 2 *".
var ErrNeverFires = errors.New("cron expression never fires")

// MaxN bounds NextN: larger counts are cut to it.
const MaxN = 10000

// maxSteps guards Next's candidate loop. The loop skips gaps and repeated
// hours in one step each, so it never comes near this; the guard only turns a
// bug into a zero Fire instead of a hung daemon.
const maxSteps = 1 << 20

// neverFiresBase is where NewSpec looks for a first fire. A cron expression
// has no year field, so whether it ever fires does not depend on the base.
var neverFiresBase = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// Fire is one fire of a schedule.
type Fire struct {
	// At is the instant to run, in the schedule's zone. It is the fire's
	// identity: the journal keys a run by (schedule, At). Compare with Equal.
	At time.Time
	// Nominal is the wall-clock time the cron named. It equals At except for a
	// DSTGap fire, whose named wall time does not exist in the zone: there
	// Nominal carries that wall time with the offset in force before the
	// transition (02:30 -05:00 for a fire moved to 03:00 EDT).
	Nominal time.Time
	// DSTGap is set when the named wall time fell in a spring-forward gap
	// and the fire was moved to the transition instant.
	DSTGap bool
	// Skip is set for a DSTGap fire of a schedule with dst: skip. The fire is
	// still due; the daemon records it as skipped with reason dst_gap.
	Skip bool
}

// IsZero reports whether f is the zero Fire (no fire).
func (f Fire) IsZero() bool { return f.At.IsZero() }

func (f Fire) String() string {
	if f.IsZero() {
		return "no fire"
	}
	s := f.At.Format(time.RFC3339)
	if f.DSTGap {
		s += " (dst gap, named " + f.Nominal.Format("15:04:05")
		if f.Skip {
			s += ", skip"
		}
		s += ")"
	}
	return s
}

// Spec is a parsed schedule: a cron expression in a zone with a DST policy.
// It is immutable and safe for concurrent use.
type Spec struct {
	expr  string
	loc   *time.Location
	dst   jobs.DSTPolicy
	wall  *cron.SpecSchedule // evaluated on a zone-free (UTC) wall clock; nil for @every
	every time.Duration      // the @every interval; zero for a cron
}

// NewSpec parses expr (see Parse) for the zone loc (nil means UTC, never the
// host's zone) and the DST policy dst (empty means run_at_transition). It
// returns an error for a malformed expression, an unknown DST policy, an
// "@every" interval below one second, and — wrapping ErrNeverFires — an
// expression that never fires. "@every" ignores loc (see the package doc).
func NewSpec(expr string, loc *time.Location, dst jobs.DSTPolicy) (*Spec, error) {
	if loc == nil {
		loc = time.UTC
	}
	switch dst {
	case "":
		dst = jobs.DSTRunAtTransition
	case jobs.DSTRunAtTransition, jobs.DSTSkip:
	default:
		return nil, fmt.Errorf("unknown dst policy %q (want %s or %s)", dst, jobs.DSTRunAtTransition, jobs.DSTSkip)
	}
	e := strings.TrimSpace(expr)
	// robfig rounds an interval below one second up to one second, which
	// would turn "@every -5m" or "@every 0s" into a once-a-second restart.
	if d, ok := strings.CutPrefix(e, "@every "); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("bad cron expression %q: %w", expr, err)
		}
		if dur < time.Second {
			return nil, fmt.Errorf("bad cron expression %q: interval must be at least 1s", expr)
		}
	}
	sched, err := Parse(e)
	if err != nil {
		return nil, err
	}
	s := &Spec{expr: e, loc: loc, dst: dst}
	switch v := sched.(type) {
	case cron.ConstantDelaySchedule:
		s.every = v.Delay
	case *cron.SpecSchedule:
		w := *v
		w.Location = time.UTC
		s.wall = &w
		if w.Next(neverFiresBase).IsZero() {
			return nil, fmt.Errorf("%q: %w", expr, ErrNeverFires)
		}
	default:
		return nil, fmt.Errorf("bad cron expression %q: unsupported schedule type %T", expr, sched)
	}
	return s, nil
}

// Expr returns the expression as parsed (trimmed).
func (s *Spec) Expr() string { return s.expr }

// Location returns the schedule's zone (UTC when none was given).
func (s *Spec) Location() *time.Location { return s.loc }

// DST returns the schedule's DST policy.
func (s *Spec) DST() jobs.DSTPolicy { return s.dst }

// Next returns the first fire strictly after after, following the DST rules
// of the package doc. It returns the zero Fire when the expression names no
// time within five years of after.
func (s *Spec) Next(after time.Time) Fire {
	if s.every > 0 {
		at := after.Truncate(s.every).Add(s.every).In(s.loc)
		return Fire{At: at, Nominal: at}
	}
	cur := s.startCursor(after)
	var gapFire Fire
	for range maxSteps {
		c := s.wall.Next(cur)
		if c.IsZero() {
			return gapFire
		}
		cur = c
		at, gap := s.resolve(c)
		if gap {
			// Every later named wall time inside this gap maps to the same
			// transition instant: jump past the gap in one step.
			cur = wallOf(at, s.loc).Add(-time.Nanosecond)
			if at.After(after) && gapFire.IsZero() {
				gapFire = Fire{At: at, Nominal: s.gapNominal(c, at), DSTGap: true, Skip: s.dst == jobs.DSTSkip}
			}
			continue
		}
		if !at.After(after) {
			continue
		}
		if !gapFire.IsZero() && !at.Equal(gapFire.At) {
			return gapFire
		}
		// A regular fire at the transition instant absorbs the gap's fire.
		return Fire{At: at, Nominal: at}
	}
	return gapFire
}

// NextN returns the next n fires strictly after after, in order; fewer when
// the expression stops firing (see Next). n is capped at MaxN; n <= 0 gives nil.
func (s *Spec) NextN(after time.Time, n int) []Fire {
	if n <= 0 {
		return nil
	}
	n = min(n, MaxN)
	out := make([]Fire, 0, min(n, 64))
	for len(out) < n {
		f := s.Next(after)
		if f.IsZero() {
			break
		}
		out = append(out, f)
		after = f.At
	}
	return out
}

// CronSchedule adapts s to robfig's cron.Schedule, for a trigger driven by
// robfig: its Next is Spec.Next(t).At in t's location (zero when none). A
// trigger built on it must still call Decide at each fire, because a DSTGap
// fire with Skip set is due but must not run.
func (s *Spec) CronSchedule() cron.Schedule { return cronAdapter{s} }

type cronAdapter struct{ s *Spec }

func (a cronAdapter) Next(t time.Time) time.Time {
	f := a.s.Next(t)
	if f.IsZero() {
		return time.Time{}
	}
	return f.At.In(t.Location())
}

// startCursor returns the wall time from which to look for named wall times
// after the instant after. It is after's own wall time, except during the
// second occurrence of a repeated (fall-back) hour: every wall time of that
// hour already fired at its first occurrence, so the search starts at the end
// of the repeated hour.
func (s *Spec) startCursor(after time.Time) time.Time {
	lt := after.In(s.loc)
	w := wallOf(lt, s.loc)
	start, _ := lt.ZoneBounds()
	if start.IsZero() {
		return w
	}
	_, off := lt.Zone()
	_, prevOff := start.Add(-time.Nanosecond).In(s.loc).Zone()
	back := time.Duration(prevOff-off) * time.Second
	if back > 0 && lt.Before(start.Add(back)) {
		// Wall times in [wall(start), wall(start)+back) repeat; end - 1ns so
		// that robfig's "strictly after, rounded up to the second" lands on
		// the end of the repeated hour itself.
		return wallOf(start, s.loc).Add(back - time.Nanosecond)
	}
	return w
}

// resolve maps a wall time w (its fields read in UTC) to the instant it fires
// in s.loc: the instant itself when w exists once, its first occurrence when w
// repeats, and the transition instant (gap = true) when w falls in a gap.
func (s *Spec) resolve(w time.Time) (at time.Time, gap bool) {
	// Zone offsets lie within [-15h, +15h], so every instant whose wall time
	// is w, and the transition that skips w, lie in this window.
	const span = 15 * time.Hour
	lo, hi := w.Add(-span), w.Add(span)
	var best, transition time.Time
	for t := lo; ; {
		lt := t.In(s.loc)
		_, off := lt.Zone()
		start, end := lt.ZoneBounds()
		if cand := w.Add(-time.Duration(off) * time.Second); (start.IsZero() || !cand.Before(start)) && (end.IsZero() || cand.Before(end)) {
			if best.IsZero() || cand.Before(best) {
				best = cand
			}
		}
		if end.IsZero() || end.After(hi) || !end.After(t) {
			break
		}
		// A forward jump over w at end: the wall clock was before w just
		// before end and is past w at end.
		if transition.IsZero() && wallOf(end.Add(-time.Nanosecond), s.loc).Before(w) && wallOf(end, s.loc).After(w) {
			transition = end
		}
		t = end
	}
	if !best.IsZero() {
		return best.In(s.loc), false
	}
	if transition.IsZero() {
		// Unreachable for real zone data: a wall time that never occurs is
		// skipped by some forward transition. Fall back to Go's normalisation.
		return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), s.loc), true
	}
	return transition.In(s.loc), true
}

// gapNominal renders the gap's named wall time w with the zone in force just
// before the transition at.
func (s *Spec) gapNominal(w, at time.Time) time.Time {
	name, off := at.Add(-time.Nanosecond).In(s.loc).Zone()
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.FixedZone(name, off))
}

// wallOf returns t's wall clock in loc as a UTC time with the same fields.
func wallOf(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	_, off := lt.Zone()
	return lt.Add(time.Duration(off) * time.Second).UTC()
}
