package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// manySchedules builds a file of n realistic schedules: a defaults block,
// varied crons and zones, app IDs and namespace patterns, labels.
func manySchedules(n int) []byte {
	zones := []string{"Asia/Shanghai", "UTC", "America/New_York", "Europe/Berlin", "Asia/Singapore"}
	var b strings.Builder
	b.WriteString("sae:\n  region: cn-hangzhou\n  quota_per_minute: 30\n")
	b.WriteString("defaults:\n  timezone: Asia/Shanghai\n  batch: {size: 25%, pause: 30s}\n  lock_wait: 30m\n  window: 2h\n")
	b.WriteString("schedules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: sched-%d\n", i)
		fmt.Fprintf(&b, "    cron: \"%d %d * * %d\"\n", i%60, i%24, i%7)
		fmt.Fprintf(&b, "    timezone: %s\n", zones[i%len(zones)])
		b.WriteString("    apps:\n")
		fmt.Fprintf(&b, "      - app_id: 1daa7236-3844-4f36-b39a-%012d\n", i)
		fmt.Fprintf(&b, "      - {namespace_id: \"cn-hangzhou:ns%d\", app_name: \"web-%d-*\", exclude: [\"ops-*\"]}\n", i%50, i)
		fmt.Fprintf(&b, "    batch: {size: %d, min_ready: 50%%}\n", 1+i%5)
		fmt.Fprintf(&b, "    jitter: %ds\n", i%120)
		fmt.Fprintf(&b, "    labels: {team: team%d, severity: page}\n", i%10)
	}
	return []byte(b.String())
}

func TestManySchedulesParse(t *testing.T) {
	cfg, err := Parse("many.yaml", manySchedules(200))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	if len(cfg.Schedules) != 200 {
		t.Fatalf("len(Schedules) = %d, want 200", len(cfg.Schedules))
	}
	if s := cfg.Schedules[199]; s.Name != "sched-199" || s.Policy.Pause != 30*time.Second || len(s.Apps) != 2 {
		t.Errorf("Schedules[199] = %+v, want sched-199 with the default pause and 2 apps", s)
	}
}

// BenchmarkParse measures load + validate of large files. Targets (issue 4):
// 1,000 schedules < 100 ms, 10,000 < 1 s.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		data := manySchedules(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			start, cpu := time.Now(), processCPU()
			for b.Loop() {
				cfg, err := Parse("many.yaml", data)
				if err != nil {
					b.Fatalf("Parse() error = %v", err)
				}
				if len(cfg.Schedules) != n {
					b.Fatalf("len(Schedules) = %d, want %d", len(cfg.Schedules), n)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
			// CPU time (GC included) stays meaningful on a loaded machine.
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
