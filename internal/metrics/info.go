package metrics

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// scheduleInfoCollector exports schedule_info{schedule, <the schedule's labels>} = 1.
//
// The schedules' `labels:` differ from schedule to schedule (one has team and
// severity, another only team), and a GaugeVec needs one fixed set of label
// names. So this is an unchecked collector: Describe sends nothing, and
// Collect emits, per schedule, a constant metric whose Desc carries exactly
// that schedule's label names. The Prometheus exposition allows series of one
// metric with different label names; PromQL treats a missing label as empty,
// so `on(schedule) group_left(team) sae_scheduler_schedule_info` works for
// every schedule. The metrics are built once per SetSchedules, so a scrape
// only hands them out.
//
// Label keys are sanitised to Prometheus label names: characters outside
// [a-zA-Z0-9_] become '_', a leading digit gets a '_' prefix. Keys that then
// clash with "schedule", start with "__" (reserved), or duplicate an earlier
// key (in sorted order) are dropped. Empty values are dropped (an empty label
// is the same as none).
type scheduleInfoCollector struct {
	name    string
	mu      sync.RWMutex
	metrics []prometheus.Metric
}

func newScheduleInfoCollector(name string) *scheduleInfoCollector {
	return &scheduleInfoCollector{name: name}
}

const scheduleInfoHelp = "Always 1: a configured schedule and its labels from the schedules file (for alert routing)."

// Describe sends nothing: the collector is unchecked (see the type's doc).
func (c *scheduleInfoCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends one metric per configured schedule.
func (c *scheduleInfoCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, m := range c.metrics {
		ch <- m
	}
}

func (c *scheduleInfoCollector) set(scheds []ScheduleInfo) {
	ms := make([]prometheus.Metric, 0, len(scheds))
	for _, s := range scheds {
		if s.Name == "" {
			continue
		}
		names, values := infoLabels(s)
		desc := prometheus.NewDesc(c.name, scheduleInfoHelp, names, nil)
		m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, 1, values...)
		if err != nil {
			// Unreachable: names are sanitised and match values in number;
			// a schedule without its info series is better than a panic.
			continue
		}
		ms = append(ms, m)
	}
	c.mu.Lock()
	c.metrics = ms
	c.mu.Unlock()
}

// infoLabels returns the label names and values of s's schedule_info series,
// "schedule" first, then the sanitised keys of s.Labels in sorted order.
func infoLabels(s ScheduleInfo) (names, values []string) {
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	names, values = []string{"schedule"}, []string{s.Name}
	seen := map[string]bool{"schedule": true}
	for _, k := range keys {
		n := LabelName(k)
		v := s.Labels[k]
		if n == "" || seen[n] || strings.HasPrefix(n, "__") || v == "" {
			continue
		}
		seen[n] = true
		names = append(names, n)
		values = append(values, v)
	}
	return names, values
}

// LabelName turns a key of a schedule's `labels:` into a Prometheus label
// name: characters outside [a-zA-Z0-9_] become '_' and a leading digit gets
// a '_' prefix. It returns "" for an empty key. The config package may use it
// to warn about keys that change.
func LabelName(key string) string {
	if key == "" {
		return ""
	}
	var b strings.Builder
	for i, r := range key {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
