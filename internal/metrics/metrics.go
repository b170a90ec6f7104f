// Package metrics exports the scheduler's Prometheus metrics. Its names and
// labels are a contract read by deploy/prometheus/alerts.yaml,
// deploy/grafana/sae-scheduler.json and outside checks: change them only
// together.
//
// Lifecycle: New registers everything on the registry it is given (never the
// global one). The daemon then calls SetSchedules with the configured
// schedules — at start and after every successful reload — which creates every
// schedule-level series at 0, so alerts never see "no data", and deletes the
// series of schedules the reload removed. RestoreTimestamps brings back the
// journal's timestamps at start. During operation the daemon reports fires
// (Scheduled, Skipped, SetNextRun, SetRunDeadline, SetSuspended), the rollout
// engine reports runs through Observe (a jobs.Observer), and the SAE client
// reports its calls (SAERequest, QuotaWait).
//
// Cardinality: label values are configured schedule names, app IDs, and fixed
// enums. Events for a schedule that is not configured (a run that outlived the
// reload removing its schedule) are dropped, so a removed schedule never comes
// back. Per-app series appear when a run resolves its apps and are deleted by
// the next SetSchedules (patterns may resolve to other apps after a reload).
//
// All methods are safe for concurrent use.
package metrics

import (
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// Namespace is the prefix of every metric of the scheduler.
const Namespace = "sae_scheduler"

// RunResults are the values of the result label of runs_total, all created at
// 0 for every configured schedule.
var RunResults = []jobs.Result{
	jobs.ResultSuccess,
	jobs.ResultFailed,
	jobs.ResultPartial,
	jobs.ResultSkipped,
	jobs.ResultDeadlineExceeded,
	jobs.ResultNeedsConfirmation,
	jobs.ResultCancelled,
	jobs.ResultInterrupted,
}

// BatchResults are the values of the result label of batches_total. A batch
// is never skipped or partial; an unknown batch result counts as failed.
var BatchResults = []jobs.Result{
	jobs.ResultSuccess,
	jobs.ResultFailed,
	jobs.ResultDeadlineExceeded,
	jobs.ResultNeedsConfirmation,
	jobs.ResultCancelled,
	jobs.ResultInterrupted,
}

// PreinitBatchResults are the results of batches_total created at 0 for every
// resolved app: enough for a failure ratio. The others appear on first use;
// pre-creating all of them would triple the largest family (see
// BenchmarkScrape1000Schedules).
var PreinitBatchResults = []jobs.Result{jobs.ResultSuccess, jobs.ResultFailed}

// SkipReasons are the values of the reason label of skipped_runs_total, all
// created at 0 for every configured schedule.
var SkipReasons = []string{
	jobs.ReasonOverlap,
	jobs.ReasonLockBusy,
	jobs.ReasonMissedDeadline,
	jobs.ReasonSuspended,
	jobs.ReasonDSTGap,
	jobs.ReasonNotDeployed,
	jobs.ReasonAppStopped,
}

// Bucket layouts of the histograms.
var (
	// RunDurationBuckets spans a quick single-app run to a long night. It is
	// per schedule, so it is kept short (the scrape of 1,000 schedules).
	RunDurationBuckets = []float64{30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800}
	// ChangeOrderWaitBuckets spans one batch's change order, submit to end.
	ChangeOrderWaitBuckets = []float64{5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600}
	// LockWaitBuckets spans waiting for another change order (a deploy) to end.
	LockWaitBuckets = []float64{1, 5, 15, 30, 60, 300, 600, 1800, 3600, 7200}
	// SAERequestBuckets spans one SAE OpenAPI call.
	SAERequestBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

// ScheduleInfo is what the metrics need to know of a configured schedule.
type ScheduleInfo struct {
	Name string
	// Labels are the schedule's `labels:` from the file (team, severity, ...),
	// exported on schedule_info for Alertmanager routing. Keys that are not
	// valid Prometheus label names are sanitised (see scheduleInfoCollector).
	Labels    map[string]string
	Suspended bool
}

// Metrics holds the scheduler's collectors. Create it with New.
type Metrics struct {
	mu sync.Mutex
	// configured is the set of schedules of the last SetSchedules.
	configured map[string]bool
	// apps is, per schedule, the apps whose per-app series exist since the
	// last SetSchedules.
	apps map[string]map[string]bool
	// batchSize remembers each submitted batch's instance count until the
	// batch ends (key: schedule, app, batch), for instances_restarted_total.
	batchSize map[batchKey]int
	// lastScheduled mirrors last_scheduled_timestamp_seconds so that a late,
	// older fire never moves it backwards.
	lastScheduled map[string]time.Time

	info *scheduleInfoCollector
	// fams are the schedule and app families (see family.go); the others
	// are plain client_golang collectors.
	fams familyCollector

	runs              *family
	skipped           *family
	batches           *family
	instances         *family
	lastRun           *family
	lastSuccess       *family
	nextRun           *family
	inProgress        *family
	lastScheduledTS   *family
	runDeadline       *family
	suspended         *family
	appLastSuccess    *family
	appInfo           *family
	runDuration       *family
	changeOrderWait   prometheus.Histogram
	lockWait          prometheus.Histogram
	saeRequests       *prometheus.CounterVec
	saeDuration       *prometheus.HistogramVec
	quotaWait         prometheus.Counter
	reloadSuccessful  prometheus.Gauge
	reloadSuccessTime prometheus.Gauge
	buildInfo         *prometheus.GaugeVec
}

type batchKey struct {
	schedule, app string
	batch         int
}

// New creates the scheduler's metrics and registers them on reg, together
// with the Go and process collectors and build_info{version,goversion}.
// It panics if reg already holds a collector of the same name (a programming
// error: New is called once per registry).
func New(reg prometheus.Registerer, version string) *Metrics {
	name := func(n string) string { return Namespace + "_" + n }
	m := &Metrics{
		configured:    map[string]bool{},
		apps:          map[string]map[string]bool{},
		batchSize:     map[batchKey]int{},
		lastScheduled: map[string]time.Time{},
		info:          newScheduleInfoCollector(name("schedule_info")),

		runs: newFamily(name("runs_total"),
			"Fires of a schedule by result; every fire adds exactly one, skipped fires included.",
			counterKind, nil, "schedule", "result"),
		skipped: newFamily(name("skipped_runs_total"),
			"Fires of a schedule that restarted nothing, by reason (also counted in runs_total{result=\"skipped\"}).",
			counterKind, nil, "schedule", "reason"),
		batches: newFamily(name("batches_total"),
			"Restart batches (one change order each) by schedule, app ID and result.",
			counterKind, nil, "schedule", "app", "result"),
		instances: newFamily(name("instances_restarted_total"),
			"Instances restarted by successful batches, by schedule and app ID.",
			counterKind, nil, "schedule", "app"),
		lastRun: newFamily(name("last_run_timestamp_seconds"),
			"Unix time the schedule's last run ended, whatever its result (0: never).",
			gaugeKind, nil, "schedule"),
		lastSuccess: newFamily(name("last_success_timestamp_seconds"),
			"Unix time the schedule's last successful run ended (0: never).",
			gaugeKind, nil, "schedule"),
		nextRun: newFamily(name("next_run_timestamp_seconds"),
			"Unix time of the schedule's next fire (0: none, e.g. suspended).",
			gaugeKind, nil, "schedule"),
		inProgress: newFamily(name("run_in_progress"),
			"1 while a run of the schedule is in progress, else 0.",
			gaugeKind, nil, "schedule"),
		lastScheduledTS: newFamily(name("last_scheduled_timestamp_seconds"),
			"Unix time of the schedule's last due fire, missed and skipped ones included (0: none yet).",
			gaugeKind, nil, "schedule"),
		runDeadline: newFamily(name("run_deadline_timestamp_seconds"),
			"Unix time by which the schedule's current or last run must end (0: none yet).",
			gaugeKind, nil, "schedule"),
		suspended: newFamily(name("schedule_suspended"),
			"1 if the schedule is suspended (suspend: true), else 0.",
			gaugeKind, nil, "schedule"),
		appLastSuccess: newFamily(name("app_last_success_timestamp_seconds"),
			"Unix time an app was last restarted successfully by the schedule (0: not since the last reload).",
			gaugeKind, nil, "schedule", "app"),
		appInfo: newFamily(name("app_info"),
			"Always 1: maps an SAE app ID to its name and namespace.",
			gaugeKind, nil, "app", "app_name", "namespace"),
		runDuration: newFamily(name("run_duration_seconds"),
			"Duration of the schedule's runs, start to end.",
			histogramKind, RunDurationBuckets, "schedule"),
		changeOrderWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    name("change_order_wait_seconds"),
			Help:    "Time from submitting a restart batch to its change order's end.",
			Buckets: ChangeOrderWaitBuckets,
		}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    name("lock_wait_seconds"),
			Help:    "Time spent waiting for another change order to release an app.",
			Buckets: LockWaitBuckets,
		}),
		saeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("sae_requests_total"),
			Help: "SAE OpenAPI calls by action and code (SAE's code, \"200\", \"transport\" or \"other\").",
		}, []string{"action", "code"}),
		saeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    name("sae_request_duration_seconds"),
			Help:    "Duration of SAE OpenAPI calls by action.",
			Buckets: SAERequestBuckets,
		}, []string{"action"}),
		quotaWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name("sae_quota_wait_seconds_total"),
			Help: "Time spent waiting for the client-side SAE API quota (60 calls a minute).",
		}),
		reloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: name("config_last_reload_successful"),
			Help: "1 if the last configuration load or reload succeeded, else 0.",
		}),
		reloadSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: name("config_last_reload_success_timestamp_seconds"),
			Help: "Unix time of the last successful configuration load or reload.",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: name("build_info"),
			Help: "Always 1: the scheduler's version and Go version.",
		}, []string{"version", "goversion"}),
	}
	m.fams = familyCollector{mu: &m.mu, fams: []*family{
		m.runs, m.skipped, m.batches, m.instances,
		m.lastRun, m.lastSuccess, m.nextRun, m.inProgress, m.lastScheduledTS, m.runDeadline, m.suspended,
		m.appLastSuccess, m.appInfo, m.runDuration,
	}}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.info,
		m.fams,
		m.changeOrderWait, m.lockWait,
		m.saeRequests, m.saeDuration, m.quotaWait,
		m.reloadSuccessful, m.reloadSuccessTime,
		m.buildInfo,
	)
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	return m
}

// scheduleFamilies are the families whose series are keyed by schedule.
func (m *Metrics) scheduleFamilies() []*family {
	return []*family{
		m.runs, m.skipped, m.lastRun, m.lastSuccess, m.nextRun, m.inProgress,
		m.lastScheduledTS, m.runDeadline, m.suspended, m.runDuration,
	}
}

// SetSchedules makes the exported schedules those of scheds: it creates every
// schedule-level series of each at 0 (existing values, such as the last
// success, are kept), sets schedule_suspended and schedule_info, deletes every
// series of a schedule not in scheds, and deletes all per-app series (they
// reappear when a run resolves its apps). Call it at start and after every
// successful reload. Entries with an empty Name are ignored.
func (m *Metrics) SetSchedules(scheds []ScheduleInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()

	next := make(map[string]bool, len(scheds))
	for _, s := range scheds {
		if s.Name != "" {
			next[s.Name] = true
		}
	}
	removed := map[string]bool{}
	for name := range m.configured {
		if !next[name] {
			removed[name] = true
			delete(m.lastScheduled, name)
		}
	}
	if len(removed) > 0 {
		for _, f := range m.scheduleFamilies() {
			f.deleteWhere("schedule", removed)
		}
	}
	for k := range m.batchSize {
		if !next[k.schedule] {
			delete(m.batchSize, k)
		}
	}
	m.batches.reset()
	m.instances.reset()
	m.appLastSuccess.reset()
	m.appInfo.reset()
	m.apps = map[string]map[string]bool{}

	// Series are created family by family in the order a scrape reads them
	// (by result or reason, then schedule: the sorted label names), so
	// that a scrape walks memory allocated in sequence.
	names := make([]string, 0, len(next))
	for name := range next {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, r := range sortedStrings(RunResults) {
		for _, name := range names {
			m.runs.get(name, r)
		}
	}
	for _, r := range sortedStrings(SkipReasons) {
		for _, name := range names {
			m.skipped.get(name, r)
		}
	}
	for _, f := range []*family{m.lastRun, m.lastSuccess, m.nextRun, m.inProgress, m.lastScheduledTS, m.runDeadline, m.suspended, m.runDuration} {
		for _, name := range names {
			f.get(name)
		}
	}
	for _, s := range scheds {
		if s.Name != "" {
			m.suspended.get(s.Name).set(boolFloat(s.Suspended))
		}
	}
	m.configured = next
	m.info.set(scheds)
}

// Observe records one event of a run; it implements jobs.Observer. Events of
// schedules that are not configured are dropped. An unknown Result counts as
// failed, so every run still adds exactly one to runs_total.
func (m *Metrics) Observe(e jobs.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.configured[e.Schedule] {
		return
	}
	switch e.Kind {
	case jobs.EventRunStarted:
		m.inProgress.get(e.Schedule).set(1)
	case jobs.EventAppResolved:
		m.ensureApp(e.Schedule, e.App)
	case jobs.EventLockWaitEnded:
		m.lockWait.Observe(e.Duration.Seconds())
	case jobs.EventBatchSubmitted:
		m.ensureApp(e.Schedule, e.App)
		// A resubmission of the same batch (stale instance IDs dropped)
		// replaces the count: only the last submission is restarted.
		m.batchSize[batchKey{e.Schedule, e.App.ID, e.Batch}] = len(e.Instances)
	case jobs.EventBatchEnded:
		m.batchEnded(e)
	case jobs.EventAppEnded:
		app := e.App
		if e.AppOutcome != nil && e.AppOutcome.App.ID != "" {
			app = e.AppOutcome.App
		}
		m.ensureApp(e.Schedule, app)
		if e.AppOutcome != nil && e.AppOutcome.Result == jobs.ResultSuccess && app.ID != "" {
			m.appLastSuccess.get(e.Schedule, app.ID).set(unixOr(e.AppOutcome.Ended, e.Time))
		}
	case jobs.EventRunEnded:
		m.runEnded(e)
	}
}

func (m *Metrics) batchEnded(e jobs.Event) {
	m.ensureApp(e.Schedule, e.App)
	key := batchKey{e.Schedule, e.App.ID, e.Batch}
	n, ok := m.batchSize[key]
	delete(m.batchSize, key)
	if len(e.Instances) > 0 {
		n, ok = len(e.Instances), true
	}
	result := knownResult(e.Result, BatchResults)
	m.batches.get(e.Schedule, e.App.ID, string(result)).add(1)
	if result == jobs.ResultSuccess && ok {
		m.instances.get(e.Schedule, e.App.ID).add(float64(n))
	}
	if e.Duration > 0 {
		m.changeOrderWait.Observe(e.Duration.Seconds())
	}
}

func (m *Metrics) runEnded(e jobs.Event) {
	result, reason, started, ended := e.Result, e.Reason, time.Time{}, e.Time
	if r := e.Run; r != nil {
		result, reason, started = r.Result, r.Reason, r.Started
		if !r.Ended.IsZero() {
			ended = r.Ended
		}
	}
	result = knownResult(result, RunResults)
	m.runs.get(e.Schedule, string(result)).add(1)
	if result == jobs.ResultSkipped && knownReason(reason) {
		m.skipped.get(e.Schedule, reason).add(1)
	}
	m.inProgress.get(e.Schedule).set(0)
	if !ended.IsZero() {
		m.lastRun.get(e.Schedule).set(unix(ended))
		if result == jobs.ResultSuccess {
			m.lastSuccess.get(e.Schedule).set(unix(ended))
		}
	}
	d := e.Duration
	if !started.IsZero() && !ended.IsZero() {
		d = ended.Sub(started)
	}
	if d > 0 {
		m.runDuration.get(e.Schedule).observe(d.Seconds())
	}
}

// ensureApp creates the per-app series of (schedule, app) at 0 the first
// time the app shows up since the last SetSchedules. m.mu must be held.
func (m *Metrics) ensureApp(schedule string, app jobs.App) {
	if app.ID == "" {
		return
	}
	seen := m.apps[schedule]
	if seen == nil {
		seen = map[string]bool{}
		m.apps[schedule] = seen
	}
	if app.Name != "" || app.NamespaceID != "" {
		// app_info has no schedule label: two schedules on one app share it.
		m.appInfo.get(app.ID, app.Name, app.NamespaceID).set(1)
	}
	if seen[app.ID] {
		return
	}
	seen[app.ID] = true
	for _, r := range PreinitBatchResults {
		m.batches.get(schedule, app.ID, string(r))
	}
	m.instances.get(schedule, app.ID)
	m.appLastSuccess.get(schedule, app.ID)
}

// Scheduled records that a fire of schedule was due at at (it sets
// last_scheduled_timestamp_seconds unless a later fire is already recorded).
// Call it when the fire is decided, before jitter or any wait.
func (m *Metrics) Scheduled(schedule string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.configured[schedule] {
		m.setLastScheduled(schedule, at)
	}
}

// setLastScheduled needs m.mu held.
func (m *Metrics) setLastScheduled(schedule string, at time.Time) {
	if at.IsZero() || !at.After(m.lastScheduled[schedule]) {
		return
	}
	m.lastScheduled[schedule] = at
	m.lastScheduledTS.get(schedule).set(unix(at))
}

// Skipped records a fire of schedule, due at scheduledAt, that started no run:
// it adds one to skipped_runs_total{reason} and one to
// runs_total{result="skipped"}, and records the fire as scheduled. A reason
// outside SkipReasons is counted in runs_total only. A run that starts and
// then ends as skipped is counted through Observe instead: do not call both.
func (m *Metrics) Skipped(schedule, reason string, scheduledAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.configured[schedule] {
		return
	}
	m.runs.get(schedule, string(jobs.ResultSkipped)).add(1)
	if knownReason(reason) {
		m.skipped.get(schedule, reason).add(1)
	}
	m.setLastScheduled(schedule, scheduledAt)
}

// SetNextRun sets next_run_timestamp_seconds; a zero t (no next fire) sets 0.
func (m *Metrics) SetNextRun(schedule string, t time.Time) {
	m.setGauge(m.nextRun, schedule, unix(t))
}

// SetRunDeadline sets run_deadline_timestamp_seconds, the instant by which the
// run that is starting must end; a zero t sets 0.
func (m *Metrics) SetRunDeadline(schedule string, t time.Time) {
	m.setGauge(m.runDeadline, schedule, unix(t))
}

// SetSuspended sets schedule_suspended.
func (m *Metrics) SetSuspended(schedule string, suspended bool) {
	m.setGauge(m.suspended, schedule, boolFloat(suspended))
}

// setGauge sets a schedule-level gauge of a configured schedule.
func (m *Metrics) setGauge(f *family, schedule string, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.configured[schedule] {
		f.get(schedule).set(v)
	}
}

// RestoreTimestamps sets a schedule's last run, last success and last
// scheduled fire from the journal at start, after SetSchedules. Zero times
// are left alone.
func (m *Metrics) RestoreTimestamps(schedule string, lastRun, lastSuccess, lastScheduled time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.configured[schedule] {
		return
	}
	if !lastRun.IsZero() {
		m.lastRun.get(schedule).set(unix(lastRun))
	}
	if !lastSuccess.IsZero() {
		m.lastSuccess.get(schedule).set(unix(lastSuccess))
	}
	m.setLastScheduled(schedule, lastScheduled)
}

// ConfigReloaded records a configuration load or reload: ok sets
// config_last_reload_successful to 1 and its timestamp to at; a failure sets
// it to 0 and keeps the timestamp.
func (m *Metrics) ConfigReloaded(ok bool, at time.Time) {
	m.reloadSuccessful.Set(boolFloat(ok))
	if ok {
		m.reloadSuccessTime.Set(unix(at))
	}
}

// SAERequest records one SAE OpenAPI call: action (mapped to "other" outside
// SAEActions), code (SAE's error code, "200" on success, "transport" when no
// answer came; mapped to "other" outside SAECodes) and its duration.
func (m *Metrics) SAERequest(action, code string, d time.Duration) {
	if !saeActions[action] {
		action = "other"
	}
	if !saeCodes[code] {
		code = "other"
	}
	m.saeRequests.WithLabelValues(action, code).Inc()
	m.saeDuration.WithLabelValues(action).Observe(d.Seconds())
}

// QuotaWait adds d, time spent waiting for the client-side API quota, to
// sae_quota_wait_seconds_total. Negative durations are ignored.
func (m *Metrics) QuotaWait(d time.Duration) {
	if d > 0 {
		m.quotaWait.Add(d.Seconds())
	}
}

// SAEActions are the action label values of the SAE metrics; any other action
// is exported as "other".
var SAEActions = []string{
	"ListApplications", "DescribeApplicationConfig", "DescribeApplicationStatus",
	"DescribeApplicationGroups", "DescribeApplicationInstances", "RestartInstances",
	"DescribeChangeOrder", "ListChangeOrders", "AbortChangeOrder",
}

// SAECodes are the code label values of sae_requests_total: success, transport
// failures, and the SAE and POP gateway error codes the scheduler knows
// (sae-api-facts §4.3). Any other code is exported as "other", so an unknown
// error never creates a series of its own.
var SAECodes = []string{
	"200", "transport", "other",
	// Throttling (the throttling alert matches code=~"Throttling.*|Rejected.Throttling").
	"Throttling", "Throttling.User", "Throttling.Api", "Rejected.Throttling",
	// Locks and transient states.
	"Application.ChangerOrderRunning", "Application.InvalidStatus", "System.Upgrading",
	"ServiceUnavailable", "InternalError",
	// Not found, bad parameters, app state.
	"InvalidApplication.NotFound", "InvalidAppId.NotFound", "InvalidChangeOrder.NotFound",
	"InvalidParameter.NotEmpty", "InvalidParameter.Obviously", "InvalidParameter.WithMessage",
	"Application.NotDeployYet",
	// Account: quota, arrears, permissions, credentials, clock.
	"NoComputeResourceQuota.Exceed", "NoComputeResourceQuota.App.Exceed", "NoComputeResourceQuota.User.Exceed",
	"user.indebt", "Resouce.no.permission", "Forbidden.RAM",
	"InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch",
	"IncompleteSignature", "InvalidTimeStamp.Expired", "InvalidTimeStamp.Format",
	"SignatureNonceUsed", "ContentMD5NotMatched",
}

var saeActions, saeCodes = set(SAEActions), set(SAECodes)

func set(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// sortedStrings returns the values of ss as sorted strings.
func sortedStrings[S ~string](ss []S) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	sort.Strings(out)
	return out
}

func knownResult(r jobs.Result, known []jobs.Result) jobs.Result {
	for _, k := range known {
		if r == k {
			return r
		}
	}
	return jobs.ResultFailed
}

func knownReason(reason string) bool {
	for _, r := range SkipReasons {
		if reason == r {
			return true
		}
	}
	return false
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func unixOr(t, fallback time.Time) float64 {
	if t.IsZero() {
		return unix(fallback)
	}
	return unix(t)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
