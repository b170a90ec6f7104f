package firing

import (
	"slices"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

func TestMissed(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	hourly := mustSpec(t, "0 * * * *", nil, "")
	nightly := mustSpec(t, "30 2 * * *", ny, "")
	nightlySkip := mustSpec(t, "30 2 * * *", ny, jobs.DSTSkip)
	everySecond := mustSpec(t, "* * * * * *", nil, "")
	// Dense then sparse, and sparse then dense: the cases where the first
	// 101 missed fires say little about the latest 101.
	firstHoursOfMonth := mustSpec(t, "* 0-2 1 * *", nil, "")
	firstOfMonth := mustSpec(t, "* * 1 * *", nil, "")
	tests := []struct {
		name        string
		spec        *Spec
		last, now   string
		deadline    time.Duration
		wantRun     string // "" for none
		wantMissed  []string
		wantTooMany bool
		// for long lists, check the count and both ends instead
		wantMissedN           int
		wantFirst, wantLatest string
	}{
		{
			name: "up and on time: the fire runs", spec: hourly,
			last: "2026-05-01T10:00:00Z", now: "2026-05-01T11:00:00Z", deadline: 0,
			wantRun: "2026-05-01T11:00:00Z",
		},
		{
			name: "nothing due yet", spec: hourly,
			last: "2026-05-01T10:00:00Z", now: "2026-05-01T10:59:59Z", deadline: time.Hour,
		},
		{
			name: "no history: nothing is due", spec: hourly,
			last: "", now: "2026-05-01T10:59:59Z", deadline: time.Hour,
		},
		{
			name: "down for 1 hour, woke within the deadline: catch up once", spec: hourly,
			last: "2026-05-01T10:00:00Z", now: "2026-05-01T11:20:00Z", deadline: 30 * time.Minute,
			wantRun: "2026-05-01T11:00:00Z",
		},
		{
			name: "down for 1 hour, woke past the deadline: recorded missed", spec: hourly,
			last: "2026-05-01T10:00:00Z", now: "2026-05-01T11:45:00Z", deadline: 30 * time.Minute,
			wantMissed: []string{"2026-05-01T11:00:00Z"},
		},
		{
			name: "deadline is inclusive", spec: hourly,
			last: "2026-05-01T10:00:00Z", now: "2026-05-01T11:30:00Z", deadline: 30 * time.Minute,
			wantRun: "2026-05-01T11:00:00Z",
		},
		{
			name: "down for 3 days over spring forward, within the deadline: the latest runs, older are missed", spec: nightly,
			last: "2026-03-06T07:30:00Z", now: "2026-03-09T07:00:00Z", deadline: 2 * time.Hour,
			wantRun:    "2026-03-09T06:30:00Z",
			wantMissed: []string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z gap"},
		},
		{
			name: "down for 3 days, past the deadline: all three missed", spec: nightly,
			last: "2026-03-06T07:30:00Z", now: "2026-03-09T12:00:00Z", deadline: 2 * time.Hour,
			wantMissed: []string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z gap", "2026-03-09T06:30:00Z"},
		},
		{
			name: "the gap fire under skip is still the due fire", spec: nightlySkip,
			last: "2026-03-07T07:30:00Z", now: "2026-03-08T07:05:00Z", deadline: time.Hour,
			wantRun: "2026-03-08T07:00:00Z gap skip",
		},
		{
			name: "exactly 100 due fires are not too many", spec: hourly,
			last: "2026-05-01T00:00:00Z", now: "2026-05-05T04:10:00Z", deadline: time.Hour,
			wantRun: "2026-05-05T04:00:00Z", wantMissedN: 99,
			wantFirst: "2026-05-01T01:00:00Z", wantLatest: "2026-05-05T03:00:00Z",
		},
		{
			name: "101 due fires are too many", spec: hourly,
			last: "2026-05-01T00:00:00Z", now: "2026-05-05T05:10:00Z", deadline: time.Hour,
			wantRun: "2026-05-05T05:00:00Z", wantMissedN: 100, wantTooMany: true,
			wantFirst: "2026-05-01T01:00:00Z", wantLatest: "2026-05-05T04:00:00Z",
		},
		{
			name: "down for 1 year, within the deadline: too many, the latest runs, the last 100 older are listed", spec: hourly,
			last: "2025-01-01T00:00:00Z", now: "2026-01-01T00:10:00Z", deadline: 30 * time.Minute,
			wantRun: "2026-01-01T00:00:00Z", wantMissedN: 100, wantTooMany: true,
			wantFirst: "2025-12-27T20:00:00Z", wantLatest: "2025-12-31T23:00:00Z",
		},
		{
			name: "down for 1 year, past the deadline: too many, the last 100 are missed", spec: hourly,
			last: "2025-01-01T00:00:00Z", now: "2026-01-01T00:45:00Z", deadline: 30 * time.Minute,
			wantMissedN: 100, wantTooMany: true,
			wantFirst: "2025-12-27T21:00:00Z", wantLatest: "2026-01-01T00:00:00Z",
		},
		{
			name: "a per-second cron down for 1 year stays bounded", spec: everySecond,
			last: "2025-01-01T00:00:00Z", now: "2026-01-01T00:00:00.5Z", deadline: time.Second,
			wantRun: "2026-01-01T00:00:00Z", wantMissedN: 100, wantTooMany: true,
			wantFirst: "2025-12-31T23:58:20Z", wantLatest: "2025-12-31T23:59:59Z",
		},
		{
			name: "dense right after the outage began, sparse near now", spec: firstHoursOfMonth,
			last: "2026-01-01T00:00:00Z", now: "2026-03-01T00:30:00Z", deadline: time.Hour,
			wantRun: "2026-03-01T00:30:00Z", wantMissedN: 100, wantTooMany: true,
			wantFirst: "2026-02-01T01:50:00Z", wantLatest: "2026-03-01T00:29:00Z",
		},
		{
			name: "sparse right after the outage began, dense near now", spec: firstOfMonth,
			last: "2026-01-01T23:59:00Z", now: "2026-02-01T23:59:30Z", deadline: time.Minute,
			wantRun: "2026-02-01T23:59:00Z", wantMissedN: 100, wantTooMany: true,
			wantFirst: "2026-02-01T22:19:00Z", wantLatest: "2026-02-01T23:58:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last time.Time
			if tt.last != "" {
				last = z(t, tt.last)
			}
			now, err := time.Parse(time.RFC3339Nano, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			run, missed, tooMany := Missed(tt.spec, last, now, tt.deadline)
			gotRun := ""
			if run != nil {
				gotRun = brief([]Fire{*run})[0]
			}
			if gotRun != tt.wantRun {
				t.Errorf("Missed() run = %q, want %q", gotRun, tt.wantRun)
			}
			if tooMany != tt.wantTooMany {
				t.Errorf("Missed() tooMany = %v, want %v", tooMany, tt.wantTooMany)
			}
			b := brief(missed)
			if tt.wantMissedN == 0 {
				if !slices.Equal(b, tt.wantMissed) {
					t.Errorf("Missed() missed = %v, want %v", b, tt.wantMissed)
				}
				return
			}
			if len(b) != tt.wantMissedN {
				t.Fatalf("len(missed) = %d, want %d", len(b), tt.wantMissedN)
			}
			if b[0] != tt.wantFirst || b[len(b)-1] != tt.wantLatest {
				t.Errorf("missed = %s … %s, want %s … %s", b[0], b[len(b)-1], tt.wantFirst, tt.wantLatest)
			}
			for i := 1; i < len(missed); i++ {
				if next := tt.spec.Next(missed[i-1].At); !next.At.Equal(missed[i].At) {
					t.Fatalf("missed[%d] = %v, want the fire after missed[%d], %v", i, missed[i].At, i-1, next.At)
				}
			}
		})
	}
}

func TestDecide(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	hourly := mustSpec(t, "0 * * * *", nil, "")
	nightly := mustSpec(t, "30 2 * * *", ny, "")
	nightlySkip := mustSpec(t, "30 2 * * *", ny, jobs.DSTSkip)
	tests := []struct {
		name       string
		spec       *Spec
		state      State
		suspended  bool
		now        string
		deadline   time.Duration
		wantAction Action
		wantReason string
		wantFire   string   // brief of Decision.Fire, "" for none
		wantMissed []string // "instant reason"
		wantLast   string
		wantNext   string
		tooMany    bool
	}{
		{
			name: "on time and idle: run", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T10:00:00Z")}, now: "2026-05-01T11:00:00Z", deadline: time.Hour,
			wantAction: ActionRun, wantFire: "2026-05-01T11:00:00Z",
			wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "previous run still going: skipped as overlap", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T10:00:00Z"), Running: true}, now: "2026-05-01T11:00:01Z", deadline: time.Hour,
			wantAction: ActionSkip, wantReason: jobs.ReasonOverlap, wantFire: "2026-05-01T11:00:00Z",
			wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "suspended: skipped as suspended, even while running", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T10:00:00Z"), Running: true}, suspended: true, now: "2026-05-01T11:00:00Z", deadline: time.Hour,
			wantAction: ActionSkip, wantReason: jobs.ReasonSuspended, wantFire: "2026-05-01T11:00:00Z",
			wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "suspended through an outage: every due fire is suspended", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T10:00:00Z")}, suspended: true, now: "2026-05-01T13:30:00Z", deadline: time.Hour,
			wantAction: ActionSkip, wantReason: jobs.ReasonSuspended, wantFire: "2026-05-01T13:00:00Z",
			wantMissed: []string{"2026-05-01T11:00:00Z suspended", "2026-05-01T12:00:00Z suspended"},
			wantLast:   "2026-05-01T13:00:00Z", wantNext: "2026-05-01T14:00:00Z",
		},
		{
			name: "spring-forward fire under skip: skipped as dst_gap", spec: nightlySkip,
			state: State{LastScheduled: z(t, "2026-03-07T07:30:00Z")}, now: "2026-03-08T07:00:00Z", deadline: 2 * time.Hour,
			wantAction: ActionSkip, wantReason: jobs.ReasonDSTGap, wantFire: "2026-03-08T07:00:00Z gap skip",
			wantLast: "2026-03-08T07:00:00Z", wantNext: "2026-03-09T06:30:00Z",
		},
		{
			name: "spring-forward fire under run_at_transition: runs at 03:00 EDT", spec: nightly,
			state: State{LastScheduled: z(t, "2026-03-07T07:30:00Z")}, now: "2026-03-08T07:00:00Z", deadline: 2 * time.Hour,
			wantAction: ActionRun, wantFire: "2026-03-08T07:00:00Z gap",
			wantLast: "2026-03-08T07:00:00Z", wantNext: "2026-03-09T06:30:00Z",
		},
		{
			name: "woke past the starting deadline: skipped as missed_deadline", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T10:00:00Z")}, now: "2026-05-01T11:31:00Z", deadline: 30 * time.Minute,
			wantAction: ActionSkip, wantReason: jobs.ReasonMissedDeadline, wantFire: "2026-05-01T11:00:00Z",
			wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "missed deadline beats overlap", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T10:00:00Z"), Running: true}, now: "2026-05-01T11:31:00Z", deadline: 30 * time.Minute,
			wantAction: ActionSkip, wantReason: jobs.ReasonMissedDeadline, wantFire: "2026-05-01T11:00:00Z",
			wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "down for 3 days: the latest runs once, the gap fire and the day before are missed", spec: nightlySkip,
			state: State{LastScheduled: z(t, "2026-03-06T07:30:00Z")}, now: "2026-03-09T07:00:00Z", deadline: 2 * time.Hour,
			wantAction: ActionRun, wantFire: "2026-03-09T06:30:00Z",
			wantMissed: []string{"2026-03-07T07:30:00Z missed_deadline", "2026-03-08T07:00:00Z gap skip dst_gap"},
			wantLast:   "2026-03-09T06:30:00Z", wantNext: "2026-03-10T06:30:00Z",
		},
		{
			name: "nothing due yet: nothing to do, state unchanged", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T11:00:00Z")}, now: "2026-05-01T11:59:59Z", deadline: time.Hour,
			wantAction: ActionNone, wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "no history: nothing due, remember now", spec: hourly,
			state: State{}, now: "2026-05-01T11:00:00Z", deadline: time.Hour,
			wantAction: ActionNone, wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "clock stepped back behind the last decided fire: nothing due, next fire after it", spec: hourly,
			state: State{LastScheduled: z(t, "2026-05-01T11:00:00Z")}, now: "2026-05-01T09:30:00Z", deadline: time.Hour,
			wantAction: ActionNone, wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
		{
			name: "down for a year: too many, the latest runs", spec: hourly,
			state: State{LastScheduled: z(t, "2025-05-01T11:00:00Z")}, now: "2026-05-01T11:00:00Z", deadline: time.Hour,
			wantAction: ActionRun, wantFire: "2026-05-01T11:00:00Z", tooMany: true,
			wantLast: "2026-05-01T11:00:00Z", wantNext: "2026-05-01T12:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.spec, tt.state, tt.suspended, z(t, tt.now), tt.deadline)
			if d.Action != tt.wantAction || d.Reason != tt.wantReason {
				t.Errorf("Decide() = %s/%q, want %s/%q", d.Action, d.Reason, tt.wantAction, tt.wantReason)
			}
			gotFire := ""
			if !d.Fire.IsZero() {
				gotFire = brief([]Fire{d.Fire})[0]
			}
			if gotFire != tt.wantFire {
				t.Errorf("Decide().Fire = %q, want %q", gotFire, tt.wantFire)
			}
			if d.TooMany != tt.tooMany {
				t.Errorf("Decide().TooMany = %v, want %v", d.TooMany, tt.tooMany)
			}
			if tt.tooMany {
				if len(d.Missed) != MaxMissed {
					t.Errorf("len(Decide().Missed) = %d, want %d", len(d.Missed), MaxMissed)
				}
			} else {
				var got []string
				for _, m := range d.Missed {
					got = append(got, brief([]Fire{m.Fire})[0]+" "+m.Reason)
				}
				if !slices.Equal(got, tt.wantMissed) {
					t.Errorf("Decide().Missed = %v, want %v", got, tt.wantMissed)
				}
			}
			if w := z(t, tt.wantLast); !d.LastScheduled.Equal(w) {
				t.Errorf("Decide().LastScheduled = %v, want %v", d.LastScheduled, w)
			}
			if w := z(t, tt.wantNext); !d.Next.At.Equal(w) {
				t.Errorf("Decide().Next = %v, want %v", d.Next, w)
			}
		})
	}
}

func TestDecideNilSpec(t *testing.T) {
	now := time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC)
	last := now.Add(-time.Hour)
	d := Decide(nil, State{LastScheduled: last}, false, now, time.Hour)
	if d.Action != ActionNone || !d.LastScheduled.Equal(last) {
		t.Errorf("Decide(nil) = %s last %v, want none last %v", d.Action, d.LastScheduled, last)
	}
	if run, missed, tooMany := Missed(nil, last, now, time.Hour); run != nil || missed != nil || tooMany {
		t.Errorf("Missed(nil) = %v, %v, %v, want nothing", run, missed, tooMany)
	}
}
