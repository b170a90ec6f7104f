package firing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q) = %v", name, err)
	}
	return loc
}

func mustSpec(t testing.TB, expr string, loc *time.Location, dst jobs.DSTPolicy) *Spec {
	t.Helper()
	s, err := NewSpec(expr, loc, dst)
	if err != nil {
		t.Fatalf("NewSpec(%q) = %v", expr, err)
	}
	return s
}

// z parses an RFC 3339 anchor; tests write instants in UTC for exactness.
func z(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time.Parse(%q) = %v", s, err)
	}
	return v
}

// brief renders fires as "UTC instant[ gap][ skip]" for comparison.
func brief(fs []Fire) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		s := f.At.UTC().Format(time.RFC3339)
		if f.DSTGap {
			s += " gap"
		}
		if f.Skip {
			s += " skip"
		}
		out = append(out, s)
	}
	return out
}

func TestNewSpec(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		dst     jobs.DSTPolicy
		wantErr string
		isNever bool
	}{
		{name: "five fields", expr: "30 2 * * *"},
		{name: "six fields with seconds first", expr: "15 30 2 * * *"},
		{name: "descriptor", expr: "@daily"},
		{name: "every interval", expr: "@every 10m"},
		{name: "surrounding spaces are trimmed", expr: "  0 * * * *  "},
		{name: "explicit skip policy", expr: "30 2 * * *", dst: jobs.DSTSkip},
		{name: "empty expression", expr: "", wantErr: "empty cron expression"},
		{name: "CRON_TZ prefix belongs in timezone", expr: "CRON_TZ=Asia/Shanghai 0 3 * * *", wantErr: "a CRON_TZ=/TZ= prefix is not allowed: set the schedule's timezone instead"},
		{name: "TZ prefix belongs in timezone", expr: "TZ=UTC 0 3 * * *", wantErr: "a CRON_TZ=/TZ= prefix is not allowed: set the schedule's timezone instead"},
		{name: "four fields", expr: "0 3 * *", wantErr: `bad cron expression "0 3 * *": expected 5 to 6 fields, found 4: [0 3 * *]`},
		{name: "hour out of range", expr: "0 25 * * *", wantErr: `bad cron expression "0 25 * * *": end of range (25) above maximum (23): 25`},
		{name: "february 30th never fires", expr: "0 0 30 2 *", wantErr: `"0 0 30 2 *": cron expression never fires`, isNever: true},
		{name: "april 31st never fires", expr: "0 0 31 4 *", wantErr: `"0 0 31 4 *": cron expression never fires`, isNever: true},
		{name: "february 29th fires in leap years", expr: "0 0 29 2 *"},
		{name: "negative interval", expr: "@every -5m", wantErr: `bad cron expression "@every -5m": interval must be at least 1s`},
		{name: "zero interval", expr: "@every 0s", wantErr: `bad cron expression "@every 0s": interval must be at least 1s`},
		{name: "sub-second interval", expr: "@every 500ms", wantErr: `bad cron expression "@every 500ms": interval must be at least 1s`},
		{name: "unparsable interval", expr: "@every soon", wantErr: `bad cron expression "@every soon": time: invalid duration "soon"`},
		{name: "unknown dst policy", expr: "30 2 * * *", dst: "twice", wantErr: `unknown dst policy "twice" (want run_at_transition or skip)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSpec(tt.expr, nil, tt.dst)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewSpec(%q) = %v, want no error", tt.expr, err)
				}
				if s.Location() != time.UTC {
					t.Errorf("Location() = %v, want UTC for a nil zone", s.Location())
				}
				if want := jobs.DSTPolicy(tt.dst); want != "" && s.DST() != want {
					t.Errorf("DST() = %q, want %q", s.DST(), want)
				}
				if s.Next(z(t, "2026-01-01T00:00:00Z")).IsZero() {
					t.Errorf("Next() = zero fire, want one")
				}
				return
			}
			if err == nil {
				t.Fatalf("NewSpec(%q) = nil error, want %q", tt.expr, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("NewSpec(%q) error = %q, want %q", tt.expr, err, tt.wantErr)
			}
			if got := errors.Is(err, ErrNeverFires); got != tt.isNever {
				t.Errorf("errors.Is(err, ErrNeverFires) = %v, want %v", got, tt.isNever)
			}
		})
	}
}

func TestNewSpecDefaultsToRunAtTransitionAndUTC(t *testing.T) {
	s := mustSpec(t, "30 2 * * *", nil, "")
	if s.DST() != jobs.DSTRunAtTransition {
		t.Errorf("DST() = %q, want %q", s.DST(), jobs.DSTRunAtTransition)
	}
	// The host zone must never leak in: a nil zone is UTC.
	got := s.Next(z(t, "2026-03-07T12:00:00Z"))
	if want := z(t, "2026-03-08T02:30:00Z"); !got.At.Equal(want) || got.At.Location() != time.UTC {
		t.Errorf("Next() = %v, want %v in UTC", got.At, want)
	}
}

// TestNextNightly0230 runs a nightly 02:30 job across both transition nights
// of each zone under both policies: the night before, the night, the night
// after.
func TestNextNightly0230(t *testing.T) {
	tests := []struct {
		name  string
		zone  string
		from  string // midnight (local) starting the night before
		dst   jobs.DSTPolicy
		want  []string
		wantN []string // Nominal wall clock, local
	}{
		{
			name: "new york spring forward runs at the transition", zone: "America/New_York", from: "2026-03-07T05:00:00Z", dst: jobs.DSTRunAtTransition,
			want:  []string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z gap", "2026-03-09T06:30:00Z"},
			wantN: []string{"2026-03-07T02:30:00-05:00", "2026-03-08T02:30:00-05:00", "2026-03-09T02:30:00-04:00"},
		},
		{
			name: "new york spring forward under skip is due but skipped", zone: "America/New_York", from: "2026-03-07T05:00:00Z", dst: jobs.DSTSkip,
			want:  []string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z gap skip", "2026-03-09T06:30:00Z"},
			wantN: []string{"2026-03-07T02:30:00-05:00", "2026-03-08T02:30:00-05:00", "2026-03-09T02:30:00-04:00"},
		},
		{
			name: "new york fall back: 02:30 exists once", zone: "America/New_York", from: "2026-10-31T04:00:00Z", dst: jobs.DSTRunAtTransition,
			want:  []string{"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"},
			wantN: []string{"2026-10-31T02:30:00-04:00", "2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"},
		},
		{
			name: "new york fall back under skip is unchanged", zone: "America/New_York", from: "2026-10-31T04:00:00Z", dst: jobs.DSTSkip,
			want:  []string{"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"},
			wantN: []string{"2026-10-31T02:30:00-04:00", "2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"},
		},
		{
			name: "berlin spring forward runs at the transition", zone: "Europe/Berlin", from: "2026-03-27T23:00:00Z", dst: jobs.DSTRunAtTransition,
			want:  []string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z gap", "2026-03-30T00:30:00Z"},
			wantN: []string{"2026-03-28T02:30:00+01:00", "2026-03-29T02:30:00+01:00", "2026-03-30T02:30:00+02:00"},
		},
		{
			name: "berlin spring forward under skip is due but skipped", zone: "Europe/Berlin", from: "2026-03-27T23:00:00Z", dst: jobs.DSTSkip,
			want:  []string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z gap skip", "2026-03-30T00:30:00Z"},
			wantN: []string{"2026-03-28T02:30:00+01:00", "2026-03-29T02:30:00+01:00", "2026-03-30T02:30:00+02:00"},
		},
		{
			name: "berlin fall back: 02:30 repeats and fires at its first occurrence", zone: "Europe/Berlin", from: "2026-10-23T22:00:00Z", dst: jobs.DSTRunAtTransition,
			want:  []string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
			wantN: []string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"},
		},
		{
			name: "berlin fall back under skip still fires once", zone: "Europe/Berlin", from: "2026-10-23T22:00:00Z", dst: jobs.DSTSkip,
			want:  []string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
			wantN: []string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"},
		},
		{
			name: "shanghai has no DST on the new york spring night", zone: "Asia/Shanghai", from: "2026-03-06T16:00:00Z", dst: jobs.DSTRunAtTransition,
			want:  []string{"2026-03-06T18:30:00Z", "2026-03-07T18:30:00Z", "2026-03-08T18:30:00Z"},
			wantN: []string{"2026-03-07T02:30:00+08:00", "2026-03-08T02:30:00+08:00", "2026-03-09T02:30:00+08:00"},
		},
		{
			name: "shanghai has no DST on the berlin fall night under skip", zone: "Asia/Shanghai", from: "2026-10-23T16:00:00Z", dst: jobs.DSTSkip,
			want:  []string{"2026-10-23T18:30:00Z", "2026-10-24T18:30:00Z", "2026-10-25T18:30:00Z"},
			wantN: []string{"2026-10-24T02:30:00+08:00", "2026-10-25T02:30:00+08:00", "2026-10-26T02:30:00+08:00"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			s := mustSpec(t, "30 2 * * *", loc, tt.dst)
			got := s.NextN(z(t, tt.from), 3)
			if b := brief(got); !slices.Equal(b, tt.want) {
				t.Fatalf("NextN() = %v, want %v", b, tt.want)
			}
			for i, f := range got {
				if n := f.Nominal.Format(time.RFC3339); n != tt.wantN[i] {
					t.Errorf("NextN()[%d].Nominal = %s, want %s", i, n, tt.wantN[i])
				}
				if f.At.Location() != loc {
					t.Errorf("NextN()[%d].At zone = %v, want %v", i, f.At.Location(), loc)
				}
			}
		})
	}
}

func TestNextFallBack0130FiresOnce(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	s := mustSpec(t, "30 1 * * *", ny, "")
	tests := []struct {
		name  string
		after string
		want  string
	}{
		{name: "from the evening before: the first occurrence (EDT)", after: "2026-11-01T00:00:00Z", want: "2026-11-01T05:30:00Z"},
		{name: "from just after the first 01:30: not again at 01:30 EST", after: "2026-11-01T05:30:00Z", want: "2026-11-02T06:30:00Z"},
		{name: "from inside the repeated hour (01:10 EST): tomorrow", after: "2026-11-01T06:10:00Z", want: "2026-11-02T06:30:00Z"},
		{name: "from the first 01:10 (EDT): today at 01:30 EDT", after: "2026-11-01T05:10:00Z", want: "2026-11-01T05:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Next(z(t, tt.after))
			if w := z(t, tt.want); !got.At.Equal(w) || got.DSTGap {
				t.Errorf("Next(%s) = %v, want %s without gap", tt.after, got, tt.want)
			}
		})
	}
}

// TestNextNHourlyOverTransitionNights lists every fire of an hourly cron
// through each transition night: the gap's hour is absorbed by the
// transition's own hour, the repeated hour fires once.
func TestNextNHourlyOverTransitionNights(t *testing.T) {
	tests := []struct {
		name      string
		zone      string
		dst       jobs.DSTPolicy
		after     string // one second before local midnight
		want      []string
		dayFires  int // fires in the 24 wall-clock hours of that day
		dayLength time.Duration
	}{
		{
			name: "new york spring forward: 02:00 is absorbed by 03:00 EDT", zone: "America/New_York", after: "2026-03-08T04:59:59Z",
			want:     []string{"2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"},
			dayFires: 23, dayLength: 23 * time.Hour,
		},
		{
			name: "new york spring forward under skip has nothing to skip", zone: "America/New_York", dst: jobs.DSTSkip, after: "2026-03-08T04:59:59Z",
			want:     []string{"2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"},
			dayFires: 23, dayLength: 23 * time.Hour,
		},
		{
			name: "new york fall back: 01:00 fires once, two hours until 02:00 EST", zone: "America/New_York", after: "2026-11-01T03:59:59Z",
			want:     []string{"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z"},
			dayFires: 24, dayLength: 25 * time.Hour,
		},
		{
			name: "berlin spring forward: 02:00 is absorbed by 03:00 CEST", zone: "Europe/Berlin", after: "2026-03-28T22:59:59Z",
			want:     []string{"2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "2026-03-29T03:00:00Z"},
			dayFires: 23, dayLength: 23 * time.Hour,
		},
		{
			name: "berlin fall back: 02:00 fires once at CEST", zone: "Europe/Berlin", after: "2026-10-24T21:59:59Z",
			want:     []string{"2026-10-24T22:00:00Z", "2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"},
			dayFires: 24, dayLength: 25 * time.Hour,
		},
		{
			name: "shanghai: every hour, every day", zone: "Asia/Shanghai", after: "2026-03-07T15:59:59Z",
			want:     []string{"2026-03-07T16:00:00Z", "2026-03-07T17:00:00Z", "2026-03-07T18:00:00Z", "2026-03-07T19:00:00Z", "2026-03-07T20:00:00Z"},
			dayFires: 24, dayLength: 24 * time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			s := mustSpec(t, "0 * * * *", loc, tt.dst)
			after := z(t, tt.after)
			if b := brief(s.NextN(after, 5)); !slices.Equal(b, tt.want) {
				t.Errorf("NextN() = %v, want %v", b, tt.want)
			}
			day := s.NextN(after, 30)
			start := day[0].At
			end := time.Date(start.Year(), start.Month(), start.Day()+1, 0, 0, 0, 0, loc)
			n := 0
			for _, f := range day {
				if f.At.Before(end) {
					n++
				}
			}
			if n != tt.dayFires {
				t.Errorf("fires on the day = %d, want %d", n, tt.dayFires)
			}
			if got := end.Sub(start); got != tt.dayLength {
				t.Errorf("day length = %v, want %v", got, tt.dayLength)
			}
		})
	}
}

func TestNextSubHourly(t *testing.T) {
	tests := []struct {
		name  string
		expr  string
		zone  string
		dst   jobs.DSTPolicy
		after string
		n     int
		want  []string
	}{
		{
			name: "every 15 minutes, spring forward: the gap collapses onto 03:00 EDT", expr: "*/15 * * * *", zone: "America/New_York", after: "2026-03-08T06:30:00Z", n: 4,
			want: []string{"2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z", "2026-03-08T07:30:00Z"},
		},
		{
			name: "every 15 minutes, fall back: the repeated hour fires once, 75 minutes pause", expr: "*/15 * * * *", zone: "America/New_York", after: "2026-11-01T05:30:00Z", n: 3,
			want: []string{"2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:15:00Z"},
		},
		{
			name: "minutes 10 and 40 of hour 2 only: one gap fire at the transition", expr: "10,40 2 * * *", zone: "America/New_York", after: "2026-03-08T05:00:00Z", n: 2,
			want: []string{"2026-03-08T07:00:00Z gap", "2026-03-09T06:10:00Z"},
		},
		{
			name: "minutes 10 and 40 of hour 2 under skip: one skipped fire", expr: "10,40 2 * * *", zone: "America/New_York", dst: jobs.DSTSkip, after: "2026-03-08T05:00:00Z", n: 2,
			want: []string{"2026-03-08T07:00:00Z gap skip", "2026-03-09T06:10:00Z"},
		},
		{
			name: "hours 2 and 3: the real 03:00 absorbs the gap's 02:00", expr: "0 2,3 * * *", zone: "America/New_York", dst: jobs.DSTSkip, after: "2026-03-08T05:00:00Z", n: 2,
			want: []string{"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"},
		},
		{
			name: "after the transition fire: the rest of the gap does not fire again", expr: "*/10 2 * * *", zone: "America/New_York", after: "2026-03-08T07:00:00Z", n: 1,
			want: []string{"2026-03-09T06:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSpec(t, tt.expr, mustLoad(t, tt.zone), tt.dst)
			if b := brief(s.NextN(z(t, tt.after), tt.n)); !slices.Equal(b, tt.want) {
				t.Errorf("NextN() = %v, want %v", b, tt.want)
			}
		})
	}
}

func TestNextSixFieldSeconds(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name     string
		expr     string
		after    string
		n        int
		want     []string
		wantNom0 string
	}{
		{
			name: "every 20 seconds", expr: "*/20 * * * * *", after: "2026-05-01T10:00:05Z", n: 4,
			want: []string{"2026-05-01T10:00:20Z", "2026-05-01T10:00:40Z", "2026-05-01T10:01:00Z", "2026-05-01T10:01:20Z"},
		},
		{
			name: "02:30:30 in the spring gap moves to the transition", expr: "30 30 2 * * *", after: "2026-03-08T05:00:00Z", n: 2,
			want:     []string{"2026-03-08T07:00:00Z gap", "2026-03-09T06:30:30Z"},
			wantNom0: "2026-03-08T02:30:30-05:00",
		},
		{
			name: "every 20 seconds across spring forward: 01:59:40 EST then 03:00:00 EDT", expr: "*/20 * * * * *", after: "2026-03-08T06:59:30Z", n: 3,
			want: []string{"2026-03-08T06:59:40Z", "2026-03-08T07:00:00Z", "2026-03-08T07:00:20Z"},
		},
		{
			name: "every 20 seconds across fall back: from 01:59:40 EDT on to 02:00:00 EST", expr: "*/20 * * * * *", after: "2026-11-01T05:59:30Z", n: 2,
			want: []string{"2026-11-01T05:59:40Z", "2026-11-01T07:00:00Z"},
		},
		{
			name: "during the repeated hour (01:30:10 EST): next is 02:00:00 EST", expr: "*/20 * * * * *", after: "2026-11-01T06:30:10Z", n: 1,
			want: []string{"2026-11-01T07:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSpec(t, tt.expr, ny, "")
			got := s.NextN(z(t, tt.after), tt.n)
			if b := brief(got); !slices.Equal(b, tt.want) {
				t.Fatalf("NextN() = %v, want %v", b, tt.want)
			}
			if tt.wantNom0 != "" {
				if n := got[0].Nominal.Format(time.RFC3339); n != tt.wantNom0 {
					t.Errorf("NextN()[0].Nominal = %s, want %s", n, tt.wantNom0)
				}
			}
		})
	}
}

func TestNextEveryIgnoresZone(t *testing.T) {
	tests := []struct {
		name  string
		expr  string
		after string
		want  []string
	}{
		{name: "every 10m across new york spring forward: no gap, no pause", expr: "@every 10m", after: "2026-03-08T06:45:00Z",
			want: []string{"2026-03-08T06:50:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:10:00Z"}},
		{name: "every 10m across fall back: the repeated hour fires twice", expr: "@every 10m", after: "2026-11-01T05:55:00Z",
			want: []string{"2026-11-01T06:00:00Z", "2026-11-01T06:10:00Z", "2026-11-01T06:20:00Z"}},
		{name: "every 10m is aligned to the interval, not to after", expr: "@every 10m", after: "2026-05-01T10:03:17.5Z",
			want: []string{"2026-05-01T10:10:00Z", "2026-05-01T10:20:00Z", "2026-05-01T10:30:00Z"}},
		{name: "every 90m is aligned to midnight UTC", expr: "@every 90m", after: "2026-05-01T00:00:01Z",
			want: []string{"2026-05-01T01:30:00Z", "2026-05-01T03:00:00Z", "2026-05-01T04:30:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after, err := time.Parse(time.RFC3339Nano, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			for _, zone := range []string{"UTC", "America/New_York", "Asia/Shanghai", "Europe/Berlin"} {
				s := mustSpec(t, tt.expr, mustLoad(t, zone), "")
				if b := brief(s.NextN(after, 3)); !slices.Equal(b, tt.want) {
					t.Errorf("in %s: NextN() = %v, want %v", zone, b, tt.want)
				}
			}
		})
	}
}

func TestNextN(t *testing.T) {
	s := mustSpec(t, "@every 1s", nil, "")
	after := z(t, "2026-01-01T00:00:00Z")
	tests := []struct {
		name string
		n    int
		want int
	}{
		{name: "zero asks for nothing", n: 0, want: 0},
		{name: "negative asks for nothing", n: -3, want: 0},
		{name: "a few", n: 5, want: 5},
		{name: "a huge count is capped", n: 1 << 40, want: MaxN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.NextN(after, tt.n)
			if len(got) != tt.want {
				t.Fatalf("len(NextN(%d)) = %d, want %d", tt.n, len(got), tt.want)
			}
			for i := 1; i < len(got); i++ {
				if !got[i].At.After(got[i-1].At) {
					t.Fatalf("NextN()[%d] = %v, not after %v", i, got[i].At, got[i-1].At)
				}
			}
		})
	}
}

func TestNextStopsWhenNothingWithinFiveYears(t *testing.T) {
	// 2100 is not a leap year: from 2097 the next 29 February is in 2104.
	s := mustSpec(t, "0 0 29 2 *", nil, "")
	if got := s.Next(z(t, "2096-03-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("Next() = %v, want the zero fire", got)
	}
	if got := s.NextN(z(t, "2096-03-01T00:00:00Z"), 3); len(got) != 0 {
		t.Errorf("NextN() = %v, want none", brief(got))
	}
	if got := s.Next(z(t, "2027-01-01T00:00:00Z")); !got.At.Equal(z(t, "2028-02-29T00:00:00Z")) {
		t.Errorf("Next() = %v, want 2028-02-29", got)
	}
}

func TestCronScheduleAdaptsNext(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	cs := mustSpec(t, "30 2 * * *", ny, jobs.DSTSkip).CronSchedule()
	after := z(t, "2026-03-08T05:00:00Z")
	got := cs.Next(after)
	if want := z(t, "2026-03-08T07:00:00Z"); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("CronSchedule().Next() = %v, want %v in after's zone", got, want)
	}
	never := mustSpec(t, "0 0 29 2 *", nil, "").CronSchedule()
	if got := never.Next(z(t, "2096-03-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("CronSchedule().Next() = %v, want zero", got)
	}
}

func TestFireString(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name string
		dst  jobs.DSTPolicy
		want string
	}{
		{name: "gap fire that runs", dst: jobs.DSTRunAtTransition, want: "2026-03-08T03:00:00-04:00 (dst gap, named 02:30:00)"},
		{name: "gap fire that is skipped", dst: jobs.DSTSkip, want: "2026-03-08T03:00:00-04:00 (dst gap, named 02:30:00, skip)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustSpec(t, "30 2 * * *", ny, tt.dst).Next(z(t, "2026-03-08T05:00:00Z"))
			if got := f.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := (Fire{}).String(); got != "no fire" {
		t.Errorf("Fire{}.String() = %q, want %q", got, "no fire")
	}
}

// oracle lists the fires in (from, to] by brute force, straight from the DST
// rules of the package doc: scan every step of real time; a wall time fires at
// its first occurrence; wall times jumped over fire once at the instant after
// the jump, unless that instant fires anyway.
func oracle(t *testing.T, expr string, loc *time.Location, from, to time.Time, step time.Duration) []string {
	t.Helper()
	w := mustSpec(t, expr, loc, "").wall
	// Match the fields directly, as cron defines them, rather than through
	// robfig's Next: the oracle shares nothing with the code under test but
	// the parsed bit sets.
	matches := func(wall time.Time) bool {
		const star = 1 << 63
		bit := func(v int) uint64 { return 1 << uint(v) }
		if bit(wall.Second())&w.Second == 0 || bit(wall.Minute())&w.Minute == 0 ||
			bit(wall.Hour())&w.Hour == 0 || bit(int(wall.Month()))&w.Month == 0 {
			return false
		}
		dom, dow := bit(wall.Day())&w.Dom != 0, bit(int(wall.Weekday()))&w.Dow != 0
		if w.Dom&star != 0 || w.Dow&star != 0 {
			return dom && dow
		}
		return dom || dow
	}
	var out []string
	// Start early so that the first occurrences before from are seen: a day
	// covers any zone's repeated hours; two hours do for the seconds tables.
	prime := 26 * time.Hour
	if step < time.Minute {
		prime = 2 * time.Hour
	}
	seen := make(map[int64]bool, int((to.Sub(from)+prime)/step)+1)
	cur := from.Add(-prime).Truncate(step)
	prev := wallOf(cur, loc)
	seen[prev.Unix()] = true
	for cur = cur.Add(step); !cur.After(to); cur = cur.Add(step) {
		wall := wallOf(cur, loc)
		real := matches(wall) && !seen[wall.Unix()]
		gap := false
		if wall.Sub(prev) > step {
			for g := prev.Add(step); g.Before(wall); g = g.Add(step) {
				if matches(g) {
					gap = true
					break
				}
			}
		}
		seen[wall.Unix()] = true
		prev = wall
		if !cur.After(from) {
			continue
		}
		switch {
		case real:
			out = append(out, cur.UTC().Format(time.RFC3339))
		case gap:
			out = append(out, cur.UTC().Format(time.RFC3339)+" gap")
		}
	}
	return out
}

// TestNextMatchesBruteForce checks Next against the oracle around transitions
// of zones with odd rules: a 30-minute shift (Lord Howe), a transition at
// midnight (Sao Paulo 2018/2019), a day that never happened (Apia, 2011-12-30)
// — from every starting point of the window, including inside repeated hours.
func TestNextMatchesBruteForce(t *testing.T) {
	nights := []struct {
		zone string
		day  string
	}{
		{"America/New_York", "2026-03-08"}, {"America/New_York", "2026-11-01"},
		{"Europe/Berlin", "2026-03-29"}, {"Europe/Berlin", "2026-10-25"},
		{"Asia/Shanghai", "2026-03-08"},
		{"Australia/Lord_Howe", "2026-04-05"}, {"Australia/Lord_Howe", "2026-10-04"},
		{"America/Sao_Paulo", "2018-11-04"}, {"America/Sao_Paulo", "2019-02-17"},
		{"Pacific/Apia", "2011-12-30"},
	}
	exprs := []string{
		"30 2 * * *", "0 * * * *", "*/15 * * * *", "30 1 * * *", "0 2 * * *", "0 3 * * *",
		"45 1,2,3 * * *", "@daily", "59 23 * * *", "*/7 0-4 * * *", "0 12 * * *", "15,45 2 * * 0",
	}
	for _, n := range nights {
		for _, expr := range exprs {
			t.Run(fmt.Sprintf("%s %s %s", n.zone, n.day, expr), func(t *testing.T) {
				loc := mustLoad(t, n.zone)
				mid := z(t, n.day+"T12:00:00Z")
				from, to := mid.Add(-36*time.Hour), mid.Add(36*time.Hour)
				want := oracle(t, expr, loc, from, to, time.Minute)
				s := mustSpec(t, expr, loc, "")
				var got []Fire
				for after := from; ; {
					f := s.Next(after)
					if f.IsZero() || f.At.After(to) {
						break
					}
					got = append(got, f)
					after = f.At
				}
				if b := brief(got); !slices.Equal(b, want) {
					t.Fatalf("fires = %v\nwant    %v", b, want)
				}
				// From any starting point, Next is the first listed fire after it.
				for after := from; after.Before(to); after = after.Add(7*time.Minute + 13*time.Second) {
					i := slices.IndexFunc(got, func(f Fire) bool { return f.At.After(after) })
					if i < 0 {
						break
					}
					if f := s.Next(after); !f.At.Equal(got[i].At) || f.DSTGap != got[i].DSTGap {
						t.Fatalf("Next(%s) = %v, want %v", after.UTC().Format(time.RFC3339), f, got[i])
					}
				}
			})
		}
	}
}

func TestNextSecondsMatchesBruteForce(t *testing.T) {
	for _, n := range []struct{ zone, transition string }{
		{"America/New_York", "2026-03-08T07:00:00Z"}, {"America/New_York", "2026-11-01T06:00:00Z"},
		{"Australia/Lord_Howe", "2026-10-03T15:30:00Z"},
	} {
		for _, expr := range []string{"*/20 * * * * *", "7 */5 * * * *", "30 30 2 * * *"} {
			t.Run(n.zone+" "+n.transition+" "+expr, func(t *testing.T) {
				loc := mustLoad(t, n.zone)
				tr := z(t, n.transition)
				from, to := tr.Add(-45*time.Minute), tr.Add(75*time.Minute)
				want := oracle(t, expr, loc, from, to, time.Second)
				got := brief(firesBetween(mustSpec(t, expr, loc, ""), from, to, 1<<20))
				if !slices.Equal(got, want) {
					t.Fatalf("fires = %v\nwant    %v", strings.Join(got, ","), strings.Join(want, ","))
				}
			})
		}
	}
}
