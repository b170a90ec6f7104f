// Package annotate marks runs on Grafana dashboards: a run's start and end
// become annotations posted to Grafana's HTTP API (POST /api/annotations),
// tagged "sae-scheduler", the schedule, and "started" or the run's result.
//
// Lifecycle: New starts one sending goroutine; the daemon adds the Annotator
// to the run's observers; Close stops it at shutdown. Observe never blocks a
// rollout: events wait in a bounded queue, and when the queue is full (Grafana
// slow or down) the event is dropped with a log line. Each request is bounded
// by a timeout. Failures are logged, never returned: annotations are a
// courtesy, the metrics and the journal are the record. The token is sent
// only in the Authorization header and never logged.
package annotate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// Defaults of the options.
const (
	DefaultQueueSize = 64
	DefaultTimeout   = 5 * time.Second
)

// Tag is the tag every annotation carries.
const Tag = "sae-scheduler"

// maxApps bounds the apps named in one annotation's text.
const maxApps = 10

// Option changes a default of New.
type Option func(*Annotator)

// WithQueueSize sets how many annotations may wait for Grafana (n >= 1).
func WithQueueSize(n int) Option {
	return func(a *Annotator) {
		if n >= 1 {
			a.queueSize = n
		}
	}
}

// WithTimeout bounds each request to Grafana (d > 0).
func WithTimeout(d time.Duration) Option {
	return func(a *Annotator) {
		if d > 0 {
			a.timeout = d
		}
	}
}

// Annotator posts run annotations to Grafana. It implements jobs.Observer.
// Create it with New; it is safe for concurrent use.
type Annotator struct {
	endpoint  string // .../api/annotations
	token     string
	client    *http.Client
	log       *slog.Logger
	queueSize int
	timeout   time.Duration

	mu     sync.Mutex // guards closed and sends on queue
	closed bool
	queue  chan Annotation
	done   chan struct{} // closed when the sender has returned
	// stop cancels the request in flight and drops the queue (Close cut short).
	ctx  context.Context
	stop context.CancelFunc
}

var _ jobs.Observer = (*Annotator)(nil)

// Annotation is the body of POST /api/annotations: an organisation-wide
// annotation (no dashboard), at Time (Unix milliseconds).
type Annotation struct {
	Time int64    `json:"time"`
	Tags []string `json:"tags"`
	Text string   `json:"text"`
}

// New returns an Annotator posting to the Grafana at baseURL (e.g.
// "https://grafana.example.com" or one with a sub-path) with token as a
// Bearer token (an empty token sends no Authorization header). client nil
// means http.DefaultClient; log nil discards logs. It starts the sending
// goroutine: call Close to stop it.
func New(baseURL, token string, client *http.Client, log *slog.Logger, opts ...Option) *Annotator {
	if client == nil {
		client = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Annotator{
		endpoint:  strings.TrimRight(baseURL, "/") + "/api/annotations",
		token:     token,
		client:    client,
		log:       log,
		queueSize: DefaultQueueSize,
		timeout:   DefaultTimeout,
		done:      make(chan struct{}),
	}
	a.ctx, a.stop = context.WithCancel(context.Background())
	for _, o := range opts {
		o(a)
	}
	a.queue = make(chan Annotation, a.queueSize)
	go a.send()
	return a
}

// Observe queues an annotation for a run's start or end; other events are
// ignored. It never blocks: when the queue is full, or after Close, the
// annotation is dropped and logged.
func (a *Annotator) Observe(e jobs.Event) {
	var ann Annotation
	switch e.Kind {
	case jobs.EventRunStarted:
		ann = startAnnotation(e)
	case jobs.EventRunEnded:
		ann = endAnnotation(e)
	default:
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.log.Warn("grafana annotation dropped: annotator closed", "schedule", e.Schedule, "event", string(e.Kind))
		return
	}
	select {
	case a.queue <- ann:
	default:
		a.log.Warn("grafana annotation dropped: queue full", "schedule", e.Schedule, "event", string(e.Kind), "queue", a.queueSize)
	}
}

// Close stops accepting annotations and waits until the queued ones are
// sent or ctx ends. If ctx ends first, the request in flight is cancelled,
// the rest of the queue is dropped, and Close returns ctx's error once the
// sender has stopped. Close is idempotent.
func (a *Annotator) Close(ctx context.Context) error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		a.stop()
		<-a.done
		return fmt.Errorf("annotate close: %w", ctx.Err())
	}
}

func (a *Annotator) send() {
	defer close(a.done)
	defer a.stop()
	for ann := range a.queue {
		if a.ctx.Err() != nil {
			a.log.Warn("grafana annotation dropped: annotator stopped", "tags", ann.Tags)
			continue
		}
		if err := a.post(ann); err != nil {
			a.log.Warn("grafana annotation failed", "err", err, "tags", ann.Tags)
		}
	}
}

// post sends one annotation. Its errors name the status, never the token.
func (a *Annotator) post(ann Annotation) error {
	body, err := json.Marshal(ann)
	if err != nil {
		return fmt.Errorf("grafana annotation: %w", err)
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("grafana annotation: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("grafana annotation: %w", err)
	}
	defer resp.Body.Close()
	// A short excerpt of Grafana's answer says why (bad token, no
	// permission); Grafana does not echo the Authorization header.
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("grafana annotation: %s: %s", resp.Status, strings.TrimSpace(string(excerpt)))
	}
	return nil
}

func startAnnotation(e jobs.Event) Annotation {
	at := e.Time
	text := fmt.Sprintf("sae-scheduler: %s started", e.Schedule)
	if !e.ScheduledAt.IsZero() {
		text += " (due " + e.ScheduledAt.UTC().Format(time.RFC3339) + ")"
	}
	return Annotation{Time: millis(at), Tags: []string{Tag, e.Schedule, "started"}, Text: text}
}

func endAnnotation(e jobs.Event) Annotation {
	result, reason, at := e.Result, e.Reason, e.Time
	var started time.Time
	var apps []jobs.AppOutcome
	if r := e.Run; r != nil {
		result, reason, started, apps = r.Result, r.Reason, r.Started, r.Apps
		if !r.Ended.IsZero() {
			at = r.Ended
		}
	}
	if result == "" {
		result = jobs.ResultFailed
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sae-scheduler: %s ended %s", e.Schedule, result)
	if reason != "" {
		fmt.Fprintf(&b, " (%s)", reason)
	}
	if !started.IsZero() && !at.IsZero() {
		fmt.Fprintf(&b, " after %s", at.Sub(started).Round(time.Second))
	}
	b.WriteString(appsText(apps))
	return Annotation{Time: millis(at), Tags: []string{Tag, e.Schedule, string(result)}, Text: b.String()}
}

// appsText summarises the apps of a run: instances restarted per app and the
// apps that failed with SAE's code (never its message or instance IDs).
func appsText(apps []jobs.AppOutcome) string {
	if len(apps) == 0 {
		return ""
	}
	var restarted, failed []string
	total := 0
	for _, o := range apps {
		name := o.App.Name
		if name == "" {
			name = o.App.ID
		}
		if n := len(o.Restarted); n > 0 {
			total += n
			restarted = append(restarted, fmt.Sprintf("%s: %d", name, n))
		}
		if o.Result != jobs.ResultSuccess && o.Result != jobs.ResultSkipped {
			why := string(o.Result)
			if o.Code != "" {
				why += " " + o.Code
			} else if o.Reason != "" {
				why += " " + o.Reason
			}
			failed = append(failed, fmt.Sprintf("%s (%s)", name, why))
		}
	}
	sort.Strings(restarted)
	sort.Strings(failed)
	s := fmt.Sprintf(": restarted %d instances in %d of %d apps", total, len(restarted), len(apps))
	if len(restarted) > 0 {
		s += " [" + bounded(restarted) + "]"
	}
	if len(failed) > 0 {
		s += "; not done: " + bounded(failed)
	}
	return s
}

// bounded joins at most maxApps items, then says how many more there are.
func bounded(items []string) string {
	if len(items) <= maxApps {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:maxApps], ", ") + fmt.Sprintf(" and %d more", len(items)-maxApps)
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixMilli()
}
