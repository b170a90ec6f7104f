package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

// t0 is the fake clock's start: a Sunday, 03:00:00 UTC.
var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// fakeSAE answers every call with a fatal error at once, so a run ends
// (failed) as soon as it starts, unless hold is set: then
// DescribeApplication blocks until release is closed, reporting on
// cancelled when its context ends first (the daemon drains or a run is
// cancelled) and then still waiting for release, as an in-flight change
// order would.
type fakeSAE struct {
	mu        sync.Mutex
	hold      bool
	started   chan string   // receives the app ID of each held call
	release   chan struct{} // closed: held calls return
	cancelled chan struct{} // receives one value per held call whose ctx ended
	err       error         // returned by every call (default: fatal not found)
	calls     int
}

func newFakeSAE(hold bool) *fakeSAE {
	return &fakeSAE{
		hold:      hold,
		started:   make(chan string, 16),
		release:   make(chan struct{}),
		cancelled: make(chan struct{}, 16),
		err:       &jobs.SAEError{Class: jobs.ClassFatal, Action: "DescribeApplication", Code: "InvalidApplication.NotFound"},
	}
}

func (f *fakeSAE) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.err
}

func (f *fakeSAE) DescribeApplication(ctx context.Context, appID string) (jobs.App, error) {
	if f.hold {
		f.started <- appID
		select {
		case <-f.release:
		case <-ctx.Done():
			f.cancelled <- struct{}{}
			<-f.release
		}
	}
	return jobs.App{}, f.fail()
}

func (f *fakeSAE) ListApplications(context.Context, string) ([]jobs.App, error) {
	return nil, f.fail()
}

func (f *fakeSAE) DescribeApplicationStatus(context.Context, string) (jobs.AppStatus, error) {
	return jobs.AppStatus{}, f.fail()
}

func (f *fakeSAE) ListInstances(context.Context, string) ([]jobs.Instance, error) {
	return nil, f.fail()
}

func (f *fakeSAE) RestartInstances(context.Context, string, []string) (string, error) {
	return "", f.fail()
}

func (f *fakeSAE) DescribeChangeOrder(context.Context, string) (jobs.ChangeOrder, error) {
	return jobs.ChangeOrder{}, f.fail()
}

func (f *fakeSAE) ListChangeOrders(context.Context, string, int) ([]jobs.ChangeOrderSummary, error) {
	return nil, f.fail()
}

func (f *fakeSAE) FindRestartChangeOrder(context.Context, string, []string, time.Time) (jobs.ChangeOrder, bool, error) {
	return jobs.ChangeOrder{}, false, f.fail()
}

func (f *fakeSAE) AbortChangeOrder(context.Context, string) error { return f.fail() }

var _ jobs.SAE = (*fakeSAE)(nil)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a Daemon on a fake clock and a fake SAE, never started: tests
// call fire, Reload, Shutdown and the HTTP handler directly.
type harness struct {
	d    *Daemon
	clk  *clock.Fake
	sae  *fakeSAE
	reg  *prometheus.Registry
	path string
	logs *syncBuffer
	outs chan jobs.RunOutcome
}

type harnessOpts struct {
	token string
	hold  bool
	start time.Time // the fake clock's start (t0 when zero)
	// statePath is the journal's file (a fresh one in t.TempDir() when
	// empty and store is nil); store, when set, is used as it is.
	statePath string
	store     journal.Store
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newHarness writes schedulesYAML and builds a Daemon on it.
func newHarness(t *testing.T, schedulesYAML string, o harnessOpts) *harness {
	t.Helper()
	if o.start.IsZero() {
		o.start = t0
	}
	h := &harness{
		clk:  clock.NewFake(o.start),
		sae:  newFakeSAE(o.hold),
		reg:  prometheus.NewRegistry(),
		path: filepath.Join(t.TempDir(), "schedules.yaml"),
		logs: &syncBuffer{},
		outs: make(chan jobs.RunOutcome, 16),
	}
	writeFile(t, h.path, schedulesYAML)
	if o.statePath == "" && o.store == nil {
		o.statePath = filepath.Join(t.TempDir(), "scheduler.db")
	}
	d, err := New(Options{
		ConfigPath: h.path,
		Listen:     "127.0.0.1:0",
		APIToken:   o.token,
		Logger:     slog.New(slog.NewTextHandler(h.logs, nil)),
		Registry:   h.reg,
		Clock:      h.clk,
		SAEFactory: func(*config.Config) (func(string) (jobs.SAE, error), error) {
			return jobs.StaticSAE(h.sae), nil
		},
		Out:             func(out jobs.RunOutcome) { h.outs <- out },
		ShutdownTimeout: time.Minute,
		StatePath:       o.statePath,
		Store:           o.store,
	})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	h.d = d
	t.Cleanup(func() {
		// Let held calls return and runs end, so no goroutine outlives the test.
		select {
		case <-h.sae.release:
		default:
			close(h.sae.release)
		}
		d.cancelRuns()
		d.wg.Wait()
		d.bg.Wait()
		d.Close()
	})
	return h
}

// fireAt moves the fake clock to at and fires the schedule as robfig would.
func (h *harness) fireAt(name string, at time.Time) {
	h.clk.Advance(at.Sub(h.clk.Now()))
	h.d.fire(name)
}

// metric reads one series of a counter or gauge vector of the daemon's metrics.
func (h *harness) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// waitOutcome waits for the next run outcome (a run's goroutine ends on
// its own, not on the fake clock).
func (h *harness) waitOutcome(t *testing.T) jobs.RunOutcome {
	t.Helper()
	select {
	case out := <-h.outs:
		return out
	case <-time.After(10 * time.Second):
		t.Fatal("no run ended within 10s")
		return jobs.RunOutcome{}
	}
}
