// Package e2etest builds emulated SAE worlds for end-to-end tests and
// benchmarks: the SAE emulator (internal/sae/emulator) serving HTTP on
// 127.0.0.1, the real SDK client (internal/sae) talking to it, and a
// jobs.Runner using that client, all on ONE clock.Scaled so that change
// orders, the quota bucket, backoffs, polls and pauses share emulated time.
//
// A World also checks the invariants every rollout must keep, from the
// emulator's own record (not from what the engine says it did): no instance
// restarted twice, no change order larger than its batch, no change order
// of someone else aborted.
//
// It is a test helper: it imports testing and reports failures through
// testing.TB. It is meant for tests of internal/jobs, internal/daemon and
// cmd/, never for production code.
package e2etest

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/sae"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// The world's account. The secret is a test value known to the emulator only.
const (
	AccessKeyID     = "LTAI5tE2EWorldKey001"
	AccessKeySecret = "e2e-world-secret"
	Region          = "cn-hangzhou"
)

// DefaultFactor is how much faster than real time a World's clock runs
// unless Config.Factor says otherwise: a 30 s restart takes 60 ms.
const DefaultFactor = 500

// Origin is the emulated instant a World's clock starts at unless
// Config.Origin says otherwise.
var Origin = time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC)

// Actions are the SAE actions the emulator serves (the names its Calls
// counts under), plus UnknownRoute.
var Actions = []string{
	"RestartInstances", "RestartApplication", "DescribeChangeOrder", "ListChangeOrders",
	"AbortChangeOrder", "DescribeApplicationStatus", "DescribeApplicationInstances",
	"DescribeApplicationGroups", "ListApplications", "DescribeApplicationConfig", "UnknownRoute",
}

// Config describes a World. Zero fields take the defaults in parentheses.
type Config struct {
	// Factor: emulated seconds per real second (DefaultFactor).
	Factor float64
	// Origin: the emulated time at start (Origin).
	Origin time.Time
	// Emulator configures the server; Start sets its Clock and AccessKeys.
	Emulator emulator.Config
	// QuotaPerMinute and Burst size the client's quota bucket
	// (sae.DefaultQuotaPerMinute, sae.DefaultBurst).
	QuotaPerMinute int
	Burst          int
}

// World is a running emulator and an SDK client of its account on one
// Scaled clock. Its fields are read-only after Start.
type World struct {
	Server  *emulator.Server
	URL     string // the emulator's base URL, http://127.0.0.1:port
	Clock   *clock.Scaled
	Limiter *sae.Limiter
	Client  *sae.Client
}

var envOnce sync.Once

// DisableSDKDefaults makes sure the SDK's default credentials chain never
// reaches the ECS metadata address or a CLI profile. Start calls it; it sets
// the process environment once and is safe for concurrent use.
func DisableSDKDefaults() {
	envOnce.Do(func() {
		_ = os.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
		_ = os.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	})
}

// Start builds a World from cfg, listening on 127.0.0.1 only, and closes it
// when tb ends. It fails tb (Fatal) when the emulator or the client cannot
// be built.
func Start(tb testing.TB, cfg Config) *World {
	tb.Helper()
	DisableSDKDefaults()
	if cfg.Factor <= 0 {
		cfg.Factor = DefaultFactor
	}
	if cfg.Origin.IsZero() {
		cfg.Origin = Origin
	}
	clk := clock.NewScaled(cfg.Origin, cfg.Factor)
	ecfg := cfg.Emulator
	ecfg.Clock = clk
	ecfg.AccessKeys = map[string]string{AccessKeyID: AccessKeySecret}
	srv, err := emulator.New(ecfg)
	if err != nil {
		tb.Fatalf("emulator.New() = %v", err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("emulator Start() = %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	lim := sae.NewLimiter(cfg.QuotaPerMinute, cfg.Burst, clk, nil)
	cli, err := sae.New(sae.Config{
		Region:      Region,
		Endpoint:    url,
		Credentials: credentials.NewStaticAKCredentialsProvider(AccessKeyID, AccessKeySecret),
		Limiter:     lim,
		Clock:       clk,
	})
	if err != nil {
		tb.Fatalf("sae.New() = %v", err)
	}
	return &World{Server: srv, URL: url, Clock: clk, Limiter: lim, Client: cli}
}

// Runner returns a Runner on the World's client and clock, with obs as its
// observer (nil: none). Callers may set further fields (Poller, AppLimit).
func (w *World) Runner(obs jobs.Observer) *jobs.Runner {
	return &jobs.Runner{
		SAE:      jobs.StaticSAE(w.Client),
		Clock:    w.Clock,
		Observer: obs,
	}
}

// TotalCalls is the number of HTTP calls the emulator received (accepted
// and rejected), over every action.
func (w *World) TotalCalls() int {
	n := 0
	for _, a := range Actions {
		n += w.Server.Calls(a)
	}
	return n
}

// CountCode counts the emulator's call events answered with code (e.g.
// "Throttling.User", "System.Upgrading").
func (w *World) CountCode(code string) int {
	n := 0
	for _, e := range w.Server.Events() {
		if e.Action != "ChangeOrderStatus" && e.Code == code {
			n++
		}
	}
	return n
}

// RestartCOs returns the app's RestartInstances change orders, oldest first.
func (w *World) RestartCOs(appID string) []emulator.ChangeOrderRecord {
	var out []emulator.ChangeOrderRecord
	for _, co := range w.Server.ChangeOrders(appID) {
		if co.Type == emulator.CoRestartInstances {
			out = append(out, co)
		}
	}
	return out
}

// InstanceIDs returns the app's live instance IDs, sorted.
func (w *World) InstanceIDs(appID string) []string {
	var ids []string
	for _, in := range w.Server.Instances(appID) {
		ids = append(ids, in.ID)
	}
	sort.Strings(ids)
	return ids
}

// Violations returns every broken rollout invariant of the app, from the
// emulator's record: an instance (or its replacements) restarted more than
// once, a restart change order with more than batchSize targets, a foreign
// change order aborted. A World runs one rollout per app, so "once" is per
// run.
func (w *World) Violations(appID string, batchSize int) []string {
	var out []string
	restarts := w.Server.Restarts(appID)
	ids := make([]string, 0, len(restarts))
	for id := range restarts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if n := restarts[id]; n > 1 {
			out = append(out, fmt.Sprintf("app %s: instance %s restarted %d times", appID, id, n))
		}
	}
	for _, co := range w.Server.ChangeOrders(appID) {
		if co.Type == emulator.CoRestartInstances && len(co.Targets) > batchSize {
			out = append(out, fmt.Sprintf("app %s: change order %s has %d targets, batch size %d", appID, co.ID, len(co.Targets), batchSize))
		}
		if co.Foreign && co.Aborted {
			out = append(out, fmt.Sprintf("app %s: foreign change order %s was aborted", appID, co.ID))
		}
	}
	return out
}

// CheckInvariants reports every Violations entry of each app as a test error.
func (w *World) CheckInvariants(tb testing.TB, batchSize int, appIDs ...string) {
	tb.Helper()
	for _, id := range appIDs {
		for _, v := range w.Violations(id, batchSize) {
			tb.Error(v)
		}
	}
}

// Recorder is an Observer that keeps every event; safe for concurrent use.
// OnEvent, if set before the run, is called with each event (from the run's
// goroutines) after it is kept.
type Recorder struct {
	OnEvent func(jobs.Event)

	mu     sync.Mutex
	events []jobs.Event
}

// Observe implements jobs.Observer.
func (r *Recorder) Observe(e jobs.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if r.OnEvent != nil {
		r.OnEvent(e)
	}
}

// Events returns the events of the given kinds (all events when none is given), in order.
func (r *Recorder) Events(kinds ...jobs.EventKind) []jobs.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []jobs.Event
	for _, e := range r.events {
		if len(kinds) == 0 || containsKind(kinds, e.Kind) {
			out = append(out, e)
		}
	}
	return out
}

func containsKind(kinds []jobs.EventKind, k jobs.EventKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}
