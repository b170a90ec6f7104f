package firing

import (
	"testing"
	"time"
)

// benchSpecs builds n schedules mixing expressions and zones, as a large
// schedules file would.
func benchSpecs(b *testing.B, n int) []*Spec {
	b.Helper()
	exprs := []string{"30 2 * * *", "0 * * * *", "*/15 * * * *", "0 3 * * 1-5", "15 30 1 * * *", "@every 10m", "@daily", "0 0 1 * *"}
	zones := []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Shanghai", "Australia/Lord_Howe"}
	specs := make([]*Spec, 0, n)
	for i := range n {
		specs = append(specs, mustSpec(b, exprs[i%len(exprs)], mustLoad(b, zones[(i/len(exprs))%len(zones)]), ""))
	}
	return specs
}

// BenchmarkNextN1000Specs measures the next 5 fires of 1,000 schedules — what
// `scheduler next` and GET /api/v1/schedules compute — one op = all 1,000.
func BenchmarkNextN1000Specs(b *testing.B) {
	for _, at := range []struct{ name, at string }{
		{"ordinary day", "2026-05-01T12:00:00Z"},
		{"new york spring night", "2026-03-08T04:00:00Z"},
		{"new york fall night", "2026-11-01T03:00:00Z"},
	} {
		b.Run(at.name, func(b *testing.B) {
			specs := benchSpecs(b, 1000)
			after := z(b, at.at)
			b.ReportAllocs()
			fires := 0
			for b.Loop() {
				for _, s := range specs {
					fires += len(s.NextN(after, 5))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(fires), "ns/fire")
		})
	}
}

// BenchmarkDecideYearOutage measures the worst start-up decision: a
// per-minute schedule after a year's outage (too many missed fires).
func BenchmarkDecideYearOutage(b *testing.B) {
	s := mustSpec(b, "* * * * *", mustLoad(b, "Europe/Berlin"), "")
	now := time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)
	st := State{LastScheduled: now.AddDate(-1, 0, 0)}
	for b.Loop() {
		d := Decide(s, st, false, now, time.Hour)
		if !d.TooMany {
			b.Fatalf("Decide().TooMany = %v, want true", d.TooMany)
		}
	}
}
