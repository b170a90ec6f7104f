package annotate

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

const testToken = "glsa_test-token-never-logged"

var t0 = time.Date(2026, 3, 8, 3, 0, 0, 0, time.UTC)

// request is one request Grafana received.
type request struct {
	method, path, auth, contentType string
	body                            Annotation
}

// grafana is a fake Grafana recording POST /api/annotations. Each request
// is answered by answer (200 by default).
type grafana struct {
	srv      *httptest.Server
	requests chan request
	answer   func(w http.ResponseWriter, r *http.Request)
}

func newGrafana(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *grafana {
	t.Helper()
	g := &grafana{requests: make(chan request, 100), answer: answer}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
		if err := json.Unmarshal(body, &req.body); err != nil {
			t.Errorf("annotation body %q is not JSON: %v", body, err)
		}
		g.requests <- req
		if g.answer != nil {
			g.answer(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"message":"Annotation added","id":1}`)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// received drains the requests received so far.
func (g *grafana) received() []request {
	var out []request
	for {
		select {
		case r := <-g.requests:
			out = append(out, r)
		default:
			return out
		}
	}
}

// logBuffer collects log output for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

func closeNow(t *testing.T, a *Annotator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close() error = %v, want nil", err)
	}
}

func runEnded(schedule string, result jobs.Result, reason string, apps ...jobs.AppOutcome) jobs.Event {
	return jobs.Event{Kind: jobs.EventRunEnded, Time: t0.Add(13 * time.Minute), Schedule: schedule, Result: result,
		Run: &jobs.RunOutcome{Schedule: schedule, ScheduledAt: t0, Started: t0.Add(time.Minute),
			Ended: t0.Add(13*time.Minute + 400*time.Millisecond), Result: result, Reason: reason, Apps: apps}}
}

func TestObservePostsRunStartAndEnd(t *testing.T) {
	tests := []struct {
		name  string
		event jobs.Event
		want  Annotation
	}{
		{
			name:  "run started: tagged started, at the start",
			event: jobs.Event{Kind: jobs.EventRunStarted, Time: t0.Add(time.Minute), Schedule: "nightly", ScheduledAt: t0},
			want: Annotation{Time: t0.Add(time.Minute).UnixMilli(), Tags: []string{"sae-scheduler", "nightly", "started"},
				Text: "sae-scheduler: nightly started (due 2026-03-08T03:00:00Z)"},
		},
		{
			name: "run succeeded: instances restarted per app",
			event: runEnded("nightly", jobs.ResultSuccess, "",
				jobs.AppOutcome{App: jobs.App{ID: "id-b", Name: "orders"}, Result: jobs.ResultSuccess, Restarted: []string{"i-1", "i-2"}},
				jobs.AppOutcome{App: jobs.App{ID: "id-a"}, Result: jobs.ResultSuccess, Restarted: []string{"i-3"}}),
			want: Annotation{Time: t0.Add(13*time.Minute + 400*time.Millisecond).UnixMilli(), Tags: []string{"sae-scheduler", "nightly", "success"},
				Text: "sae-scheduler: nightly ended success after 12m0s: restarted 3 instances in 2 of 2 apps [id-a: 1, orders: 2]"},
		},
		{
			name: "run partial: the failed app with SAE's code, not its message",
			event: runEnded("nightly", jobs.ResultPartial, "",
				jobs.AppOutcome{App: jobs.App{ID: "id-a", Name: "web"}, Result: jobs.ResultSuccess, Restarted: []string{"i-1"}},
				jobs.AppOutcome{App: jobs.App{ID: "id-b", Name: "api"}, Result: jobs.ResultFailed, Code: "Application.ChangerOrderRunning",
					Message: "secret-ish detail i-9"}),
			want: Annotation{Time: t0.Add(13*time.Minute + 400*time.Millisecond).UnixMilli(), Tags: []string{"sae-scheduler", "nightly", "partial"},
				Text: "sae-scheduler: nightly ended partial after 12m0s: restarted 1 instances in 1 of 2 apps [web: 1]; not done: api (failed Application.ChangerOrderRunning)"},
		},
		{
			name:  "run skipped: the reason, no apps",
			event: runEnded("weekly", jobs.ResultSkipped, jobs.ReasonLockBusy),
			want: Annotation{Time: t0.Add(13*time.Minute + 400*time.Millisecond).UnixMilli(), Tags: []string{"sae-scheduler", "weekly", "skipped"},
				Text: "sae-scheduler: weekly ended skipped (lock_busy) after 12m0s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGrafana(t, nil)
			a := New(g.srv.URL+"/", testToken, g.srv.Client(), nil)
			a.Observe(tt.event)
			closeNow(t, a)

			got := g.received()
			if len(got) != 1 {
				t.Fatalf("Grafana received %d requests, want 1", len(got))
			}
			r := got[0]
			if r.method != http.MethodPost || r.path != "/api/annotations" {
				t.Errorf("request = %s %s, want POST /api/annotations", r.method, r.path)
			}
			if r.auth != "Bearer "+testToken {
				t.Errorf("Authorization = %q, want the Bearer token", r.auth)
			}
			if r.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", r.contentType)
			}
			if r.body.Time != tt.want.Time || strings.Join(r.body.Tags, ",") != strings.Join(tt.want.Tags, ",") || r.body.Text != tt.want.Text {
				t.Errorf("annotation = %+v, want %+v", r.body, tt.want)
			}
		})
	}
}

func TestObserveIgnoresOtherEvents(t *testing.T) {
	g := newGrafana(t, nil)
	a := New(g.srv.URL, testToken, g.srv.Client(), nil)
	for _, k := range []jobs.EventKind{jobs.EventAppResolved, jobs.EventBatchSubmitted, jobs.EventBatchEnded, jobs.EventAppEnded} {
		a.Observe(jobs.Event{Kind: k, Schedule: "nightly", Time: t0})
	}
	closeNow(t, a)
	if got := g.received(); len(got) != 0 {
		t.Errorf("Grafana received %d requests for batch and app events, want 0", len(got))
	}
}

func TestBaseURLWithSubPath(t *testing.T) {
	g := newGrafana(t, nil)
	a := New(g.srv.URL+"/grafana", "", g.srv.Client(), nil)
	a.Observe(jobs.Event{Kind: jobs.EventRunStarted, Schedule: "nightly", Time: t0})
	closeNow(t, a)
	got := g.received()
	if len(got) != 1 || got[0].path != "/grafana/api/annotations" || got[0].auth != "" {
		t.Errorf("requests = %+v, want one to /grafana/api/annotations without Authorization", got)
	}
}

func TestGrafanaErrorIsLoggedWithoutTheTokenAndNotFatal(t *testing.T) {
	calls := 0
	g := newGrafana(t, func(w http.ResponseWriter, r *http.Request) {
		calls++ // the server handles one request at a time: the sender is sequential
		if calls == 1 {
			http.Error(w, `{"message":"Internal error"}`, http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, `{"id":2}`)
	})
	log, logs := newLogger()
	a := New(g.srv.URL, testToken, g.srv.Client(), log)
	a.Observe(jobs.Event{Kind: jobs.EventRunStarted, Schedule: "nightly", Time: t0})
	a.Observe(runEnded("nightly", jobs.ResultSuccess, ""))
	closeNow(t, a)

	if got := g.received(); len(got) != 2 {
		t.Errorf("Grafana received %d requests, want 2 (the one after the 500 too)", len(got))
	}
	out := logs.String()
	if !strings.Contains(out, "grafana annotation failed") || !strings.Contains(out, "500 Internal Server Error") || !strings.Contains(out, "Internal error") {
		t.Errorf("logs = %q, want the failure with its status and Grafana's message", out)
	}
	if strings.Contains(out, testToken) {
		t.Errorf("logs = %q, contain the token", out)
	}
}

func TestUnreachableGrafanaIsLoggedWithoutTheToken(t *testing.T) {
	g := newGrafana(t, nil)
	url := g.srv.URL
	g.srv.Close()
	log, logs := newLogger()
	a := New(url, testToken, nil, log, WithTimeout(2*time.Second))
	a.Observe(jobs.Event{Kind: jobs.EventRunStarted, Schedule: "nightly", Time: t0})
	closeNow(t, a)
	out := logs.String()
	if !strings.Contains(out, "grafana annotation failed") || strings.Contains(out, testToken) {
		t.Errorf("logs = %q, want the failure without the token", out)
	}
}

func TestFullQueueDropsWithALogLine(t *testing.T) {
	release := make(chan struct{})
	g := newGrafana(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, `{"id":1}`)
	})
	log, logs := newLogger()
	a := New(g.srv.URL, testToken, g.srv.Client(), log, WithQueueSize(1))
	start := jobs.Event{Kind: jobs.EventRunStarted, Schedule: "nightly", Time: t0}

	a.Observe(start)
	first := <-g.requests // the sender holds the first, waiting on Grafana
	a.Observe(start)      // queued
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Observe(start) // dropped: must not block
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Observe() blocked on a full queue")
	}
	if out := logs.String(); !strings.Contains(out, "grafana annotation dropped: queue full") || !strings.Contains(out, "schedule=nightly") {
		t.Errorf("logs = %q, want a queue-full drop naming the schedule", out)
	}
	close(release)
	closeNow(t, a)
	if got := 1 + len(g.received()); got != 2 {
		t.Errorf("Grafana received %d requests, want 2 (first %v, one queued, one dropped)", got, first.body.Tags)
	}
}

func TestCloseCutShortCancelsTheRequestInFlight(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	g := newGrafana(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	log, logs := newLogger()
	a := New(g.srv.URL, testToken, g.srv.Client(), log, WithTimeout(time.Minute))
	a.Observe(jobs.Event{Kind: jobs.EventRunStarted, Schedule: "nightly", Time: t0})
	a.Observe(jobs.Event{Kind: jobs.EventRunStarted, Schedule: "weekly", Time: t0})
	<-g.requests // the first is in flight

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Close(ctx); err == nil {
		t.Errorf("Close(cancelled ctx) error = nil, want the context's error")
	}
	if out := logs.String(); !strings.Contains(out, "grafana annotation dropped: annotator stopped") {
		t.Errorf("logs = %q, want the queued annotation dropped", out)
	}
	a.Observe(jobs.Event{Kind: jobs.EventRunStarted, Schedule: "late", Time: t0}) // after Close: dropped, no panic
	if out := logs.String(); !strings.Contains(out, "annotator closed") {
		t.Errorf("logs = %q, want the annotation after Close dropped", out)
	}
}
