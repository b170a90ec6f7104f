package metrics

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The helpers below read a registry through Gather, as a scrape does. They
// stand in for prometheus/testutil, whose diff dependency
// (github.com/kylelemons/godebug) has no go.sum entry in this module.

// series is one gathered sample: metric name, labels, value (a counter's or
// gauge's value; a histogram's sample count).
type series struct {
	name   string
	labels map[string]string
	value  float64
}

func gather(t testing.TB, g prometheus.Gatherer) []series {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	var out []series
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := series{name: mf.GetName(), labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value = float64(m.GetHistogram().GetSampleCount())
			default:
				s.value = m.GetUntyped().GetValue()
			}
			out = append(out, s)
		}
	}
	return out
}

// value returns the value of the one series of name whose labels include
// want, and whether there is one.
func value(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	var found []series
	for _, s := range gather(t, g) {
		if s.name == name && matches(s.labels, want) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return 0, false
	case 1:
		return found[0].value, true
	}
	t.Fatalf("%s%v matches %d series, want at most 1", name, want, len(found))
	return 0, false
}

// mustValue is value that fails the test when the series is missing.
func mustValue(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := value(t, g, name, want)
	if !ok {
		t.Fatalf("%s%v is missing", name, want)
	}
	return v
}

// count returns how many series of name have labels including want.
func count(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) int {
	t.Helper()
	n := 0
	for _, s := range gather(t, g) {
		if s.name == name && matches(s.labels, want) {
			n++
		}
	}
	return n
}

// scheduleSeries lists "name{labels}" of every series carrying schedule=name.
func scheduleSeries(t testing.TB, g prometheus.Gatherer, schedule string) []string {
	t.Helper()
	var out []string
	for _, s := range gather(t, g) {
		if s.labels["schedule"] == schedule {
			out = append(out, s.name+labelString(s.labels))
		}
	}
	sort.Strings(out)
	return out
}

func matches(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func labelString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}
