package metrics

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Why not CounterVec and friends for the schedule and app families: with
// 1,000 schedules they hold ~39,000 series, and a scrape through the
// vectors spent a quarter of its time sorting them (a vector hands out its
// series in map order, the registry sorts every family) and much of the rest
// allocating a fresh value per series. A family here keeps its series
// sorted exactly as the registry sorts them (by label values, in the order
// of the sorted label names), so the registry's sort runs over sorted input
// in linear time, and each series hands out an immutable value built when
// it changed — a scrape allocates nothing per series here. Values change a
// few times a night; scrapes come every 15 s.
//
// New series are merged into the sorted order lazily, by the next scrape:
// a run resolving its apps costs a map insert, not a copy of the family.

// valueKind is the type of a family's series.
type valueKind uint8

const (
	counterKind valueKind = iota
	gaugeKind
	histogramKind
)

// maxLabels is the most labels a family has (batches_total, app_info).
const maxLabels = 3

// family is one metric family whose series are created and deleted by the
// Metrics methods. Every field is guarded by the mutex of the
// familyCollector it belongs to (Metrics.mu).
type family struct {
	desc    *prometheus.Desc
	kind    valueKind
	buckets []float64 // histograms only
	// labelPos is the position of each label name in names, for deleteWhere.
	labelPos map[string]int
	// names are the label names, sorted, each one string shared by every
	// series; order maps a position in names to one in the desc's labels.
	names []*string
	order []int

	byKey map[string]*liveSeries
	// sorted is what a scrape hands out: sorted as the registry sorts, and
	// replaced (never modified in place) when series come or go, so a
	// scrape can read it after releasing the mutex.
	sorted []*liveSeries
	// pending are series created since the last commit; they are already
	// in byKey and reach sorted at commit.
	pending []*liveSeries
	// deleted is set when series died since the last commit.
	deleted bool

	// created and zero are shared by the series created within one second:
	// their created timestamp and their value before the first change.
	created *timestamppb.Timestamp
	zero    *pubValue
}

func newFamily(name, help string, kind valueKind, buckets []float64, labels ...string) *family {
	if len(labels) > maxLabels {
		panic("metrics: a family has more than maxLabels labels") // a programming error in New, caught by every test
	}
	f := &family{
		desc:     prometheus.NewDesc(name, help, labels, nil),
		kind:     kind,
		buckets:  buckets,
		labelPos: make(map[string]int, len(labels)),
		byKey:    map[string]*liveSeries{},
	}
	for i := range labels {
		f.order = append(f.order, i)
	}
	sort.Slice(f.order, func(a, b int) bool { return labels[f.order[a]] < labels[f.order[b]] })
	for pos, i := range f.order {
		f.names = append(f.names, proto.String(labels[i]))
		f.labelPos[labels[i]] = pos
	}
	return f
}

// get returns the series of the label values (in the order of the
// family's label names), creating it at 0.
func (f *family) get(values ...string) *liveSeries {
	key := strings.Join(values, "\xff")
	if s, ok := f.byKey[key]; ok {
		return s
	}
	s := &liveSeries{desc: f.desc, kind: f.kind, n: uint8(len(f.names))}
	for i, name := range f.names {
		s.vals[i] = values[f.order[i]]
		s.pairs[i].Name, s.pairs[i].Value = name, &s.vals[i]
		s.ptrs[i] = &s.pairs[i]
	}
	s.created = f.createdNow()
	if f.kind == histogramKind {
		s.hist = &histState{buckets: f.buckets, counts: make([]uint64, len(f.buckets))}
		s.publish()
	} else {
		s.out.Store(f.zero)
	}
	f.byKey[key] = s
	f.pending = append(f.pending, s)
	return s
}

// createdNow returns the created timestamp of a series created now, and
// keeps f.zero in step with it.
func (f *family) createdNow() *timestamppb.Timestamp {
	now := time.Now()
	if f.created == nil || now.Sub(f.created.AsTime()) >= time.Second {
		f.created = timestamppb.New(now)
		f.zero = newValue(f.kind, 0, f.created)
	}
	return f.created
}

// deleteWhere deletes every series whose label is one of values.
func (f *family) deleteWhere(label string, values map[string]bool) {
	i, ok := f.labelPos[label]
	if !ok {
		return
	}
	for k, s := range f.byKey {
		if values[s.vals[i]] {
			delete(f.byKey, k)
			s.dead, f.deleted = true, true
		}
	}
}

// reset deletes every series.
func (f *family) reset() {
	for _, s := range f.byKey {
		s.dead = true
	}
	if len(f.byKey) > 0 {
		f.byKey = map[string]*liveSeries{}
		f.deleted = true
	}
}

// commit brings sorted up to date with the series created and deleted
// since the last commit.
func (f *family) commit() {
	if len(f.pending) == 0 && !f.deleted {
		return
	}
	fresh := make([]*liveSeries, 0, len(f.pending))
	for _, s := range f.pending {
		if !s.dead {
			fresh = append(fresh, s)
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return lessLabels(fresh[i].labels(), fresh[j].labels()) })
	kept := f.sorted
	if f.deleted {
		kept = make([]*liveSeries, 0, len(f.sorted))
		for _, s := range f.sorted {
			if !s.dead {
				kept = append(kept, s)
			}
		}
	}
	// Merge: kept is sorted, and new series are usually few among many (a
	// run's apps), so each one finds its place by bisection.
	next := make([]*liveSeries, 0, len(kept)+len(fresh))
	for _, s := range fresh {
		i := sort.Search(len(kept), func(i int) bool { return lessLabels(s.labels(), kept[i].labels()) })
		next = append(append(next, kept[:i]...), s)
		kept = kept[i:]
	}
	f.sorted = append(next, kept...)
	f.pending, f.deleted = nil, false
}

// lessLabels orders label pairs as the registry orders metrics of a family
// (client_golang's internal MetricSorter): by value, label by label, in the
// sorted order of the label names.
func lessLabels(a, b []*dto.LabelPair) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	for i := range a {
		if va, vb := a[i].GetValue(), b[i].GetValue(); va != vb {
			return va < vb
		}
	}
	return false
}

// liveSeries is one series of a family. It is a prometheus.Metric whose Write
// hands out the value last published: immutable dto values shared by every
// scrape until the next change (as client_golang's const metrics do). Its
// label pairs live inside it: a scrape reads every series' pairs, and memory
// read in order reads faster.
type liveSeries struct {
	desc *prometheus.Desc
	out  atomic.Pointer[pubValue]
	kind valueKind
	n    uint8 // number of labels
	dead bool  // deleted; guarded by Metrics.mu

	created *timestamppb.Timestamp
	v       float64    // counter or gauge value; guarded by Metrics.mu
	hist    *histState // histograms only; guarded by Metrics.mu

	ptrs  [maxLabels]*dto.LabelPair // sorted by name; never modified once built
	pairs [maxLabels]dto.LabelPair
	vals  [maxLabels]string // label values in the order of the sorted names
}

// pubValue is a series' value as a scrape hands it out: built whole at each
// change and never modified. One of its pointers is set.
type pubValue struct {
	counter   *dto.Counter
	gauge     *dto.Gauge
	histogram *dto.Histogram
}

func newValue(kind valueKind, v float64, created *timestamppb.Timestamp) *pubValue {
	switch kind {
	case counterKind:
		c := &struct {
			pubValue
			c dto.Counter
			v float64
		}{v: v}
		c.c.Value, c.c.CreatedTimestamp = &c.v, created
		c.counter = &c.c
		return &c.pubValue
	case gaugeKind:
		g := &struct {
			pubValue
			g dto.Gauge
			v float64
		}{v: v}
		g.g.Value = &g.v
		g.gauge = &g.g
		return &g.pubValue
	}
	return &pubValue{}
}

func (s *liveSeries) labels() []*dto.LabelPair { return s.ptrs[:s.n] }

// Desc implements prometheus.Metric.
func (s *liveSeries) Desc() *prometheus.Desc { return s.desc }

// Write implements prometheus.Metric. It never fails.
func (s *liveSeries) Write(out *dto.Metric) error {
	p := s.out.Load()
	out.Label = s.ptrs[:s.n]
	out.Counter, out.Gauge, out.Histogram = p.counter, p.gauge, p.histogram
	return nil
}

func (s *liveSeries) set(v float64) {
	if v == s.v {
		return
	}
	s.v = v
	s.publish()
}

func (s *liveSeries) add(v float64) { s.set(s.v + v) }

func (s *liveSeries) observe(x float64) {
	s.hist.observe(x)
	s.publish()
}

func (s *liveSeries) publish() {
	if s.kind == histogramKind {
		s.out.Store(&pubValue{histogram: s.hist.dto(s.created)})
		return
	}
	s.out.Store(newValue(s.kind, s.v, s.created))
}

// histState is a classic histogram's state.
type histState struct {
	buckets []float64 // upper bounds, ascending, +Inf implied
	counts  []uint64  // observations per bucket, not cumulative
	count   uint64
	sum     float64
}

func (h *histState) observe(x float64) {
	// Upper bounds are inclusive (le): the first bound >= x.
	if i := sort.SearchFloat64s(h.buckets, x); i < len(h.buckets) {
		h.counts[i]++
	}
	h.count++
	h.sum += x
}

func (h *histState) dto(created *timestamppb.Timestamp) *dto.Histogram {
	bs := make([]dto.Bucket, len(h.buckets))
	ptrs := make([]*dto.Bucket, len(h.buckets))
	var cum uint64
	for i, ub := range h.buckets {
		cum += h.counts[i]
		bs[i].CumulativeCount = proto.Uint64(cum)
		bs[i].UpperBound = proto.Float64(ub)
		ptrs[i] = &bs[i]
	}
	return &dto.Histogram{
		SampleCount:      proto.Uint64(h.count),
		SampleSum:        proto.Float64(h.sum),
		Bucket:           ptrs,
		CreatedTimestamp: created,
	}
}

// familyCollector collects a fixed set of families guarded by mu.
type familyCollector struct {
	mu   *sync.Mutex
	fams []*family
}

// Describe implements prometheus.Collector.
func (c familyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.fams {
		ch <- f.desc
	}
}

// Collect implements prometheus.Collector. It holds the mutex only to bring
// the families' sorted series up to date, not while the registry reads them.
func (c familyCollector) Collect(ch chan<- prometheus.Metric) {
	snaps := make([][]*liveSeries, len(c.fams))
	c.mu.Lock()
	for i, f := range c.fams {
		f.commit()
		snaps[i] = f.sorted
	}
	c.mu.Unlock()
	for _, snap := range snaps {
		for _, s := range snap {
			ch <- s
		}
	}
}
