package config

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sae-scheduler/sae-scheduler/internal/firing"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// opt is one policy value as read from a mapping: whether it was present,
// and whether it was invalid (its error already recorded), so that values
// inherited from defaults neither repeat that error nor feed it into
// cross-field checks.
type opt[T any] struct {
	v    T
	n    *yaml.Node
	path string
	set  bool
	bad  bool
}

func present[T any](n *yaml.Node, path string, v T, ok bool) opt[T] {
	return opt[T]{v: v, n: n, path: path, set: true, bad: !ok}
}

// pick is field-by-field inheritance: the schedule's value, else the
// defaults block's, else the built-in.
func pick[T any](own, def opt[T], builtin T) opt[T] {
	if own.set {
		return own
	}
	if def.set {
		return def
	}
	return opt[T]{v: builtin}
}

// policySpec holds every key that may stand in defaults or in a schedule.
type policySpec struct {
	timezone                                                                opt[*time.Location]
	batchSize, minReady                                                     opt[jobs.Quantity]
	pause, lockWait, batchTimeout, window, minAge, jitter, startingDeadline opt[time.Duration]
	maxFailedBatches, appConcurrency, maxFailedApps                         opt[int]
	onStuck                                                                 opt[jobs.StuckPolicy]
	dst                                                                     opt[jobs.DSTPolicy]
}

var policyKeys = []string{
	"timezone", "batch", "lock_wait", "batch_timeout", "window", "max_failed_batches", "app_concurrency",
	"max_failed_apps", "min_age", "on_stuck", "dst", "jitter", "starting_deadline",
}

var (
	batchKeys    = []string{"size", "pause", "min_ready"}
	scheduleKeys = append([]string{"name", "cron", "region", "apps", "suspend", "labels"}, policyKeys...)
	appKeys      = []string{"app_id", "namespace_id", "app_name", "exclude"}
	nameRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	labelRE      = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

var defaultsHints = map[string]string{
	"name":    "name is set per schedule, not in defaults",
	"cron":    "cron is set per schedule, not in defaults",
	"apps":    "apps are set per schedule, not in defaults",
	"suspend": "suspend is set per schedule, not in defaults",
	"labels":  "labels are set per schedule, not in defaults",
	"region":  "region belongs in sae.region (or in a schedule)",
}

var scheduleHints = map[string]string{
	"size":      "size belongs under batch (batch: {size: ...})",
	"pause":     "pause belongs under batch (batch: {pause: ...})",
	"min_ready": "min_ready belongs under batch (batch: {min_ready: ...})",
	"app_id":    "app_id belongs in an apps entry (apps: [{app_id: ...}])",
	"endpoint":  "endpoint belongs in sae.endpoint",
}

// policyKey decodes p into s when p is a policy key, reporting whether it was.
func (d *decoder) policyKey(p pair, parent string, s *policySpec) bool {
	fp := join(parent, p.key)
	switch p.key {
	case "timezone":
		v, ok := d.zone(p.v, fp)
		s.timezone = present(p.v, fp, v, ok)
	case "batch":
		d.batch(p.v, fp, s)
	case "lock_wait":
		s.lockWait = d.durationOpt(p.v, fp, false)
	case "batch_timeout":
		s.batchTimeout = d.durationOpt(p.v, fp, true)
	case "window":
		s.window = d.durationOpt(p.v, fp, true)
	case "min_age":
		s.minAge = d.durationOpt(p.v, fp, false)
	case "jitter":
		s.jitter = d.durationOpt(p.v, fp, false)
	case "starting_deadline":
		s.startingDeadline = d.durationOpt(p.v, fp, false)
	case "max_failed_batches":
		s.maxFailedBatches = d.intOpt(p.v, fp, 0)
	case "app_concurrency":
		s.appConcurrency = d.intOpt(p.v, fp, 1)
	case "max_failed_apps":
		s.maxFailedApps = d.intOpt(p.v, fp, 0)
	case "on_stuck":
		v, ok := d.oneOf(p.v, fp, string(jobs.StuckAbort), string(jobs.StuckLeave))
		s.onStuck = present(p.v, fp, jobs.StuckPolicy(v), ok)
	case "dst":
		v, ok := d.oneOf(p.v, fp, string(jobs.DSTRunAtTransition), string(jobs.DSTSkip))
		s.dst = present(p.v, fp, jobs.DSTPolicy(v), ok)
	default:
		return false
	}
	return true
}

func (d *decoder) batch(n *yaml.Node, fp string, s *policySpec) {
	pairs, _ := d.mapping(n, fp)
	for _, p := range pairs {
		kp := join(fp, p.key)
		switch p.key {
		case "size":
			s.batchSize = d.quantityOpt(p.v, kp, 1, "must be at least 1")
		case "min_ready":
			s.minReady = d.quantityOpt(p.v, kp, 0, "must not be negative")
		case "pause":
			s.pause = d.durationOpt(p.v, kp, false)
		default:
			d.unknown(p, fp, batchKeys, nil)
		}
	}
}

// quantity reads a count (2) or a percentage ("25%").
func (d *decoder) quantity(n *yaml.Node, fp string) (jobs.Quantity, bool) {
	const want = `a count or a percentage like "25%"`
	if !d.scalar(n, fp, want) {
		return jobs.Quantity{}, false
	}
	s := strings.TrimSpace(n.Value)
	q := jobs.Quantity{}
	if n.ShortTag() == "!!str" && strings.HasSuffix(s, "%") {
		q.Percent = true
		s = strings.TrimSpace(strings.TrimSuffix(s, "%"))
	} else if n.ShortTag() != "!!int" && n.ShortTag() != "!!str" {
		d.errorf(n, fp, "must be %s, got %s %q", want, describe(n), n.Value)
		return q, false
	}
	v, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil {
		d.errorf(n, fp, "must be %s, got %q", want, n.Value)
		return q, false
	}
	q.Value = v
	return q, true
}

// quantityOpt decodes a count or a percentage of at most 100%, at least
// least; tooSmall is the error below it.
func (d *decoder) quantityOpt(n *yaml.Node, fp string, least int, tooSmall string) opt[jobs.Quantity] {
	v, ok := d.quantity(n, fp)
	if ok && v.Value < least {
		ok = false
		d.errorf(n, fp, "%s", tooSmall)
	}
	if ok && v.Percent && v.Value > 100 {
		ok = false
		d.errorf(n, fp, "must be at most 100%%")
	}
	return present(n, fp, v, ok)
}

func (d *decoder) durationOpt(n *yaml.Node, fp string, positive bool) opt[time.Duration] {
	v, ok := d.duration(n, fp)
	if ok && positive && v == 0 {
		ok = false
		d.errorf(n, fp, "must be greater than 0")
	}
	return present(n, fp, v, ok)
}

func (d *decoder) intOpt(n *yaml.Node, fp string, least int) opt[int] {
	v, ok := d.integer(n, fp)
	if ok && v < least {
		ok = false
		if least == 0 {
			d.errorf(n, fp, "must not be negative")
		} else {
			d.errorf(n, fp, "must be at least %d", least)
		}
	}
	return present(n, fp, v, ok)
}

// zone loads an IANA zone; the host's zone ("Local") is refused so that a
// schedule fires at the same instant on every host.
func (d *decoder) zone(n *yaml.Node, fp string) (*time.Location, bool) {
	s, ok := d.str(n, fp)
	if !ok {
		return nil, false
	}
	if s == "" || s == "Local" {
		d.errorf(n, fp, "must be an IANA zone name like Asia/Shanghai or UTC (the host's zone is never used)")
		return nil, false
	}
	loc, cached := d.zones[s]
	if !cached {
		var err error
		loc, err = time.LoadLocation(s)
		if err != nil {
			loc = nil
		}
		d.zones[s] = loc
	}
	if loc == nil {
		d.errorf(n, fp, "unknown time zone %q (want an IANA name like Asia/Shanghai)", s)
		return nil, false
	}
	return loc, true
}

// defaults decodes the defaults block and checks its own combinations once,
// so schedules that inherit them do not repeat the error.
func (d *decoder) defaults(p *pair) policySpec {
	var s policySpec
	if p == nil {
		return s
	}
	pairs, _ := d.mapping(p.v, "defaults")
	for _, q := range pairs {
		if !d.policyKey(q, "defaults", &s) {
			d.unknown(q, "defaults", policyKeys, defaultsHints)
		}
	}
	if s.jitter.set {
		d.checkJitter(s.jitter, pick(s.window, opt[time.Duration]{}, jobs.DefaultPolicy().Window), true)
	}
	return s
}

// checkJitter reports a jitter that could push a fire past its window. The
// error goes to the jitter when it was set at this level, else to the window.
func (d *decoder) checkJitter(jitter, window opt[time.Duration], jitterOwn bool) {
	if jitter.bad || window.bad || jitter.v < window.v {
		return
	}
	if jitterOwn {
		d.errorf(jitter.n, jitter.path, "must be shorter than window (%s)", fmtDuration(window.v))
		return
	}
	d.errorf(window.n, window.path, "must be longer than jitter (%s)", fmtDuration(jitter.v))
}

// fmtDuration prints 2h rather than 2h0m0s.
func fmtDuration(v time.Duration) string {
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// schedules decodes the schedules list into validated jobs.Schedule values.
func (d *decoder) schedules(n *yaml.Node, fp, saeRegion string, defs policySpec) []jobs.Schedule {
	items, ok := d.sequence(n, fp)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, fp, "must list at least one schedule")
		return nil
	}
	out := make([]jobs.Schedule, 0, len(items))
	names := make(map[string]int, len(items)) // name -> line: a map keeps this O(n)
	for i, item := range items {
		s, ok := d.schedule(item, index(fp, i), saeRegion, defs, names)
		if ok {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) schedule(n *yaml.Node, fp, saeRegion string, defs policySpec, names map[string]int) (jobs.Schedule, bool) {
	pairs, ok := d.mapping(n, fp)
	if !ok {
		return jobs.Schedule{}, false
	}
	if isNull(n) {
		d.errorf(n, fp, "must be a mapping with at least name, cron and apps")
		return jobs.Schedule{}, false
	}
	before := len(d.errs)
	var (
		own                             policySpec
		name, cronExpr, region          string
		nameNode, cronNode, regionNode  *yaml.Node
		apps                            []jobs.AppSelector
		appsSeen, regionSet, regionGood bool
		suspend                         bool
		labels                          map[string]string
	)
	for _, p := range pairs {
		kp := join(fp, p.key)
		switch p.key {
		case "name":
			name, _ = d.str(p.v, kp)
			nameNode = p.v
		case "cron":
			cronExpr, _ = d.str(p.v, kp)
			cronNode = p.v
		case "region":
			regionSet = true
			region, regionGood = d.region(p.v, kp)
			regionNode = p.v
		case "apps":
			appsSeen = true
			apps = d.apps(p.v, kp)
		case "suspend":
			suspend, _ = d.boolean(p.v, kp)
		case "labels":
			labels = d.labels(p.v, kp)
		default:
			if !d.policyKey(p, fp, &own) {
				d.unknown(p, fp, scheduleKeys, scheduleHints)
			}
		}
	}

	d.checkName(n, nameNode, name, join(fp, "name"), names)
	if !appsSeen {
		d.errorf(n, join(fp, "apps"), "must list at least one app")
	}
	switch {
	case regionSet && !regionGood:
	case regionSet && region == "":
		d.errorf(regionNode, join(fp, "region"), "must not be empty")
	case !regionSet && saeRegion == "" && !d.saeRegionBad:
		d.errorf(n, join(fp, "region"), "is required when sae.region is not set")
	case !regionSet:
		region = saeRegion
	}

	builtin := jobs.DefaultPolicy()
	window := pick(own.window, defs.window, builtin.Window)
	jitter := pick(own.jitter, defs.jitter, 0)
	if own.jitter.set || own.window.set {
		d.checkJitter(jitter, window, own.jitter.set)
	}
	loc := pick(own.timezone, defs.timezone, time.UTC)
	d.checkCron(n, cronNode, cronExpr, join(fp, "cron"))

	if len(d.errs) > before {
		return jobs.Schedule{}, false
	}
	sched := jobs.Schedule{
		Name:     name,
		Cron:     cronExpr,
		Location: loc.v,
		Region:   region,
		Apps:     apps,
		Policy: jobs.Policy{
			BatchSize:        pick(own.batchSize, defs.batchSize, builtin.BatchSize).v,
			MinReady:         pick(own.minReady, defs.minReady, builtin.MinReady).v,
			Pause:            pick(own.pause, defs.pause, builtin.Pause).v,
			LockWait:         pick(own.lockWait, defs.lockWait, builtin.LockWait).v,
			BatchTimeout:     pick(own.batchTimeout, defs.batchTimeout, builtin.BatchTimeout).v,
			Window:           window.v,
			MaxFailedBatches: pick(own.maxFailedBatches, defs.maxFailedBatches, builtin.MaxFailedBatches).v,
			AppConcurrency:   pick(own.appConcurrency, defs.appConcurrency, builtin.AppConcurrency).v,
			MaxFailedApps:    pick(own.maxFailedApps, defs.maxFailedApps, builtin.MaxFailedApps).v,
			MinAge:           pick(own.minAge, defs.minAge, builtin.MinAge).v,
			OnStuck:          pick(own.onStuck, defs.onStuck, builtin.OnStuck).v,
		},
		Jitter:           jitter.v,
		Suspend:          suspend,
		DST:              pick(own.dst, defs.dst, jobs.DSTRunAtTransition).v,
		StartingDeadline: pick(own.startingDeadline, defs.startingDeadline, window.v).v,
		Labels:           labels,
		Source:           d.name + ":" + strconv.Itoa(n.Line),
	}
	return sched, true
}

func (d *decoder) checkName(n, nameNode *yaml.Node, name, fp string, names map[string]int) {
	switch {
	case nameNode == nil:
		d.errorf(n, fp, "is required")
	case name == "":
		d.errorf(nameNode, fp, "must not be empty")
	case !nameRE.MatchString(name):
		d.errorf(nameNode, fp, "must match %s (it becomes a metric label and a URL segment), got %q", nameRE, name)
	default:
		if line, dup := names[name]; dup {
			d.errorf(nameNode, fp, "duplicate name %q (first at line %d)", name, line)
			return
		}
		names[name] = nameNode.Line
	}
}

// checkCron parses the expression and makes sure it fires at all: robfig's
// Next returns the zero time when nothing matches within five years
// (e.g. "0 0 30 2 *"). Results are cached: files repeat expressions.
func (d *decoder) checkCron(n, cronNode *yaml.Node, expr, fp string) {
	if cronNode == nil {
		d.errorf(n, fp, "is required")
		return
	}
	if strings.TrimSpace(expr) == "" {
		d.errorf(cronNode, fp, "must not be empty")
		return
	}
	msg, cached := d.crons[expr]
	if !cached {
		if s, err := firing.Parse(expr); err != nil {
			msg = err.Error()
		} else if s.Next(time.Now()).IsZero() {
			msg = "never fires: no time matches it within 5 years"
		}
		d.crons[expr] = msg
	}
	if msg != "" {
		d.errorf(cronNode, fp, "%s", msg)
	}
}

func (d *decoder) apps(n *yaml.Node, fp string) []jobs.AppSelector {
	items, ok := d.sequence(n, fp)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, fp, "must list at least one app")
		return nil
	}
	out := make([]jobs.AppSelector, 0, len(items))
	var ids map[string]int
	for i, item := range items {
		ip := index(fp, i)
		a, ok := d.app(item, ip)
		if !ok {
			continue
		}
		if a.AppID != "" {
			if ids == nil {
				ids = map[string]int{}
			}
			if line, dup := ids[a.AppID]; dup {
				d.errorf(item, join(ip, "app_id"), "duplicate app_id %q (first at line %d)", a.AppID, line)
				continue
			}
			ids[a.AppID] = item.Line
		}
		out = append(out, a)
	}
	return out
}

const appShape = "must have either app_id or namespace_id + app_name"

func (d *decoder) app(n *yaml.Node, fp string) (jobs.AppSelector, bool) {
	var a jobs.AppSelector
	if n.Kind != yaml.MappingNode {
		d.errorf(n, fp, "%s, got %s", appShape, describe(n))
		return a, false
	}
	pairs, _ := d.mapping(n, fp)
	before := len(d.errs)
	var hasID, hasNS, hasName, hasExclude bool
	for _, p := range pairs {
		kp := join(fp, p.key)
		switch p.key {
		case "app_id":
			hasID = true
			a.AppID, _ = d.nonEmpty(p.v, kp)
		case "namespace_id":
			hasNS = true
			a.NamespaceID, _ = d.nonEmpty(p.v, kp)
		case "app_name":
			hasName = true
			if s, ok := d.nonEmpty(p.v, kp); ok {
				if d.glob(p.v, kp, s) {
					a.AppName = s
				}
			}
		case "exclude":
			hasExclude = true
			items, _ := d.sequence(p.v, kp)
			for j, it := range items {
				ep := index(kp, j)
				if s, ok := d.nonEmpty(it, ep); ok && d.glob(it, ep, s) {
					a.Exclude = append(a.Exclude, s)
				}
			}
		default:
			d.unknown(p, fp, appKeys, nil)
		}
	}
	switch {
	case hasID && (hasNS || hasName):
		d.errorf(n, fp, "%s, not both", appShape)
	case !hasID && !hasNS && !hasName:
		d.errorf(n, fp, appShape)
	case hasNS && !hasName:
		d.errorf(n, join(fp, "app_name"), "is required with namespace_id (a name or a glob like \"web-*\")")
	case hasName && !hasNS:
		d.errorf(n, join(fp, "namespace_id"), "is required with app_name")
	case hasID && hasExclude:
		d.errorf(n, join(fp, "exclude"), "applies only to namespace_id + app_name")
	}
	return a, len(d.errs) == before
}

func (d *decoder) nonEmpty(n *yaml.Node, fp string) (string, bool) {
	s, ok := d.str(n, fp)
	if ok && s == "" {
		d.errorf(n, fp, "must not be empty")
		return "", false
	}
	return s, ok
}

// glob validates a path.Match pattern; Match checks the whole pattern even
// when the name does not match.
func (d *decoder) glob(n *yaml.Node, fp, pattern string) bool {
	if _, err := path.Match(pattern, ""); err != nil {
		d.errorf(n, fp, "bad glob %q: %v", pattern, err)
		return false
	}
	return true
}

// reservedLabels are set by the daemon on every schedule series.
var reservedLabels = map[string]bool{"schedule": true}

func (d *decoder) labels(n *yaml.Node, fp string) map[string]string {
	pairs, ok := d.mapping(n, fp)
	if !ok || len(pairs) == 0 {
		return nil
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		switch k := normalizeKey(p.key); {
		case k == "accesskeyid" || k == "accesskeysecret" || k == "securitytoken":
			d.errorf(p.k, join(fp, p.key), credentialsMsg)
			continue
		case !labelRE.MatchString(p.key):
			d.errorf(p.k, fp, "invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", p.key)
			continue
		case strings.HasPrefix(p.key, "__"):
			d.errorf(p.k, fp, "invalid label name %q: names starting with __ are reserved by Prometheus", p.key)
			continue
		case reservedLabels[p.key]:
			d.errorf(p.k, fp, "invalid label name %q: the daemon sets it", p.key)
			continue
		}
		if v, ok := d.str(p.v, join(fp, p.key)); ok {
			out[p.key] = v
		}
	}
	return out
}
