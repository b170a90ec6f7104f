package emulator

import (
	"container/heap"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Change-order status codes (facts §5.1).
const (
	coPreparing    = 0
	coRunning      = 1
	coSucceeded    = 2
	coFailed       = 3
	coAborted      = 6
	coWaitConfirm  = 8
	coAutoWait     = 9
	coSystemFailed = 10
	coWaitApproval = 11
	coApproved     = 12
)

// Change-order type codes.
const (
	CoRestartInstances   = "CoRestartInstances"
	CoRestartApplication = "CoRestartApplication"
	CoDeploy             = "CoDeploy"
)

// Instance container and health states (facts §5.5).
const (
	podRunning         = "Running"
	podTerminating     = "Terminating"
	podPending         = "Pending"
	podInitializing    = "PodInitializing"
	healthHealthy      = "Healthy"
	healthNotChecked   = "NotCheckedYet"
	healthReadinessBad = "ReadinessUnhealthy"
)

// Phases of one batch, as fractions of the batch's duration: the pod starts
// terminating at 10 % (the first 10 % of the first batch is the change
// order's preparing phase), the new container is Pending at 30 %,
// PodInitializing at 50 %, Running (health not checked yet) at 80 % and
// Healthy at 100 %, when the batch ends.
const (
	phaseTerminate = 0.1
	phasePending   = 0.3
	phaseInit      = 0.5
	phaseRunning   = 0.8
)

// shanghai is SAE's wall-clock zone for CreateTime strings (whole seconds, no
// zone in the string). Asia/Shanghai has had no DST since 1991, so a fixed
// +08:00 is exact and needs no tzdata.
var shanghai = time.FixedZone("CST", 8*3600)

const coTimeLayout = "2006-01-02 15:04:05"

var statusNames = map[int]string{
	coPreparing: "READY", coRunning: "RUNNING", coSucceeded: "SUCCESS", coFailed: "FAIL",
	coAborted: "ABORT", coWaitConfirm: "WAIT_BATCH_CONFIRM", coAutoWait: "AUTO_BATCH_WAIT",
	coSystemFailed: "SYSTEM_FAIL", coWaitApproval: "WAIT_APPROVAL", coApproved: "APPROVED",
}

func terminal(status int) bool {
	return status == coSucceeded || status == coFailed || status == coAborted || status == coSystemFailed
}

type app struct {
	id, name, ns, region string
	created              time.Time
	restartTime          time.Duration
	restartJitter        float64
	replace              bool
	stopped, notDeployed bool
	groups               []*group
	pods                 []*pod // live pods, creation order
	cos                  []*changeOrder
	restarts             map[string]int // original pod ID -> restarts
	deploys              []*pendingDeploy
}

type group struct {
	id, name string
	replicas int
}

type pod struct {
	id, origID, groupID string
	status, health      string
	restarts            int64
	created             time.Time
	ip                  string
}

type pendingDeploy struct {
	spec    ForeignChangeOrder
	due     time.Time
	started bool
}

type changeOrder struct {
	id          string
	a           *app
	typ         string
	targets     []string
	created     time.Time
	started     time.Time
	ended       time.Time
	status      int
	subStatus   int
	foreign     bool
	aborted     bool
	errMsg      string
	description string
	batchDur    time.Duration
	batches     []*batch
	current     int
}

type batch struct {
	pipelineID string
	pods       []*pod
	status     int
	start      time.Time
	update     time.Time
}

func (co *changeOrder) record() ChangeOrderRecord {
	return ChangeOrderRecord{
		ID: co.id, AppID: co.a.id, Type: co.typ, Targets: append([]string{}, co.targets...),
		Created: co.created, Started: co.started, Ended: co.ended, Status: co.status, SubStatus: co.subStatus,
		BatchCount: len(co.batches), Foreign: co.foreign, Aborted: co.aborted,
	}
}

// running reports whether the change order holds the app's lock: anything
// not terminal, including waits for confirmation or approval and a stuck
// SubStatus 1.
func (co *changeOrder) running() bool { return !terminal(co.status) }

func (s *Server) setStatusLocked(co *changeOrder, status int, at time.Time) {
	if co.status == status {
		return
	}
	co.status = status
	if terminal(status) {
		co.ended = at
	}
	s.recordLocked(Event{Time: at, Action: "ChangeOrderStatus", AppID: co.a.id, ChangeOrderID: co.id, Code: strconv.Itoa(status)})
	if terminal(status) {
		s.startDueDeploysLocked(co.a, at)
	}
}

// --- lazy time: a queue of timed transitions applied up to Clock.Now() ---

type timedEvent struct {
	at  time.Time
	seq uint64
	fn  func(at time.Time)
}

type eventQueue []*timedEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*timedEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s *Server) scheduleLocked(at time.Time, fn func(at time.Time)) {
	s.seq++
	heap.Push(&s.queue, &timedEvent{at: at, seq: s.seq, fn: fn})
}

// advanceLocked applies every transition due at or before now, in time order.
// The model has no goroutines: state is brought up to date on each access.
func (s *Server) advanceLocked(now time.Time) {
	for s.queue.Len() > 0 && !s.queue[0].at.After(now) {
		e := heap.Pop(&s.queue).(*timedEvent)
		e.fn(e.at)
	}
}

// --- world construction ---

func (s *Server) addAppLocked(spec AppSpec) {
	spec = spec.withDefaults(s.cfg.ReplaceInstanceIDs)
	a := &app{
		id: spec.AppID, name: spec.AppName, ns: spec.NamespaceID, region: spec.Region,
		created: s.start.Add(-24 * time.Hour), restartTime: spec.RestartTime, restartJitter: spec.RestartJitter,
		replace: *spec.ReplaceInstanceIDs, stopped: spec.Stopped, notDeployed: spec.NotDeployed,
		restarts: map[string]int{},
	}
	s.apps[a.id] = a
	s.appOrder = append(s.appOrder, a.id)
	hash := s.randAlnum(10)
	for _, g := range spec.Groups {
		a.groups = append(a.groups, &group{id: g.GroupID, name: g.GroupName, replicas: g.Instances})
		if a.stopped || a.notDeployed {
			continue
		}
		for i := 0; i < g.Instances; i++ {
			p := s.newPodLocked(a, g.GroupID, hash, a.created.Add(time.Duration(i)*time.Second))
			p.status, p.health = podRunning, healthHealthy
			a.pods = append(a.pods, p)
		}
	}
	for _, d := range spec.Deploys {
		pd := &pendingDeploy{spec: d, due: s.start.Add(d.After)}
		a.deploys = append(a.deploys, pd)
		s.scheduleLocked(pd.due, func(at time.Time) { s.startDueDeploysLocked(a, at) })
	}
	for _, f := range spec.Faults {
		if f.AppID == "" {
			f.AppID = a.id
		}
		s.faults = append(s.faults, newFaultState(f))
	}
}

func (s *Server) newPodLocked(a *app, groupID, rsHash string, created time.Time) *pod {
	id := fmt.Sprintf("%s-%s-%s-%s", podPrefix(a.name), a.id, rsHash, s.randAlnum(5))
	s.nextIP++
	return &pod{
		id: id, origID: id, groupID: groupID, created: created,
		ip: fmt.Sprintf("192.168.%d.%d", s.nextIP/250, s.nextIP%250+2),
	}
}

func podPrefix(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "app"
	}
	return b.String()
}

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func (s *Server) randAlnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[s.rng.IntN(len(alnum))]
	}
	return string(b)
}

func (s *Server) randHex(n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = hex[s.rng.IntN(16)]
	}
	return string(b)
}

func (s *Server) newUUIDLocked() string {
	h := s.randHex(32)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// livePods returns the app's pods of a group ("" = all groups).
func (a *app) livePods(groupID string) []*pod {
	var out []*pod
	for _, p := range a.pods {
		if groupID == "" || p.groupID == groupID {
			out = append(out, p)
		}
	}
	return out
}

func (a *app) pod(id string) *pod {
	for _, p := range a.pods {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (a *app) runningCO() *changeOrder {
	for _, co := range a.cos {
		if co.running() {
			return co
		}
	}
	return nil
}

func (a *app) lastCO() *changeOrder {
	if len(a.cos) == 0 {
		return nil
	}
	return a.cos[len(a.cos)-1]
}

func (a *app) runningInstances() int {
	n := 0
	for _, p := range a.pods {
		if p.status == podRunning {
			n++
		}
	}
	return n
}

func (a *app) currentStatus() string {
	switch {
	case a.notDeployed:
		return "UNKNOWN"
	case a.stopped:
		return "STOPPED"
	}
	return "RUNNING"
}

// --- foreign change orders ---

// startDueDeploysLocked starts the app's due foreign deploys while the lock
// is free: their owner is taken to retry until SAE accepts.
func (s *Server) startDueDeploysLocked(a *app, at time.Time) {
	for _, pd := range a.deploys {
		if pd.started || pd.due.After(at) || a.runningCO() != nil {
			continue
		}
		pd.started = true
		co := s.newCOLocked(a, CoDeploy, nil, at, pd.spec.Duration, 1)
		co.foreign = true
		co.description = "Deploy application"
		s.recordLocked(Event{Time: at, Action: "ForeignDeploy", AppID: a.id, ChangeOrderID: co.id, Code: "200"})
		final := pd.spec.Status
		if final == 0 {
			final = coSucceeded
		}
		dur := pd.spec.Duration
		s.scheduleLocked(at.Add(dur/10), func(t time.Time) {
			if co.status == coPreparing {
				co.started = t
				co.batches[0].status, co.batches[0].start, co.batches[0].update = coRunning, t, t
				s.setStatusLocked(co, coRunning, t)
			}
		})
		s.scheduleLocked(at.Add(dur), func(t time.Time) {
			if !co.running() {
				return
			}
			bs := final
			if !terminal(final) {
				bs = coRunning
			}
			co.batches[0].status, co.batches[0].update = bs, t
			s.setStatusLocked(co, final, t)
		})
	}
}

// --- change orders ---

func (s *Server) newCOLocked(a *app, typ string, batches [][]*pod, at time.Time, batchDur time.Duration, nBatches int) *changeOrder {
	co := &changeOrder{
		id: s.newUUIDLocked(), a: a, typ: typ, created: at, status: coPreparing,
		batchDur: batchDur, targets: []string{},
	}
	if batches == nil {
		batches = make([][]*pod, nBatches)
	}
	for _, pods := range batches {
		co.batches = append(co.batches, &batch{pipelineID: s.newUUIDLocked(), pods: pods, update: at})
		for _, p := range pods {
			co.targets = append(co.targets, p.id)
		}
	}
	a.cos = append(a.cos, co)
	s.cos[co.id] = co
	s.recordLocked(Event{Time: at, Action: "ChangeOrderStatus", AppID: a.id, ChangeOrderID: co.id, Code: "0", Detail: typ})
	return co
}

// startRestartCOLocked creates a restart change order over batches of pods
// and schedules its whole life; outcome is the co_* fault that shapes it ("" = success).
func (s *Server) startRestartCOLocked(a *app, typ string, batches [][]*pod, at time.Time, outcome FaultKind) *changeOrder {
	d := a.restartTime
	if a.restartJitter > 0 {
		d = time.Duration(float64(d) * (1 + a.restartJitter*(2*s.rng.Float64()-1)))
	}
	co := s.newCOLocked(a, typ, batches, at, d, len(batches))
	switch typ {
	case CoRestartInstances:
		co.description = "Restart instances"
	default:
		co.description = "Restart application"
	}
	tAt := func(b int, f float64) time.Time {
		return at.Add(time.Duration(b)*d + time.Duration(f*float64(d)))
	}
	switch outcome {
	case FaultCOWaitApproval:
		s.setStatusLocked(co, coWaitApproval, at)
		return co
	case FaultCOWaitConfirm:
		s.scheduleLocked(tAt(0, phaseTerminate), func(t time.Time) {
			if co.running() {
				s.setStatusLocked(co, coWaitConfirm, t)
			}
		})
		return co
	case FaultCOSystemFail:
		s.scheduleLocked(tAt(0, phaseTerminate), func(t time.Time) {
			if co.running() {
				co.errMsg = "The change order failed because of a system exception."
				co.batches[0].status, co.batches[0].update = coSystemFailed, t
				s.setStatusLocked(co, coSystemFailed, t)
			}
		})
		return co
	}
	for bi, b := range co.batches {
		failHere := bi == 0 && (outcome == FaultCOFail || outcome == FaultCOStuckSubStatus)
		last := bi == len(co.batches)-1 || failHere
		s.scheduleBatchLocked(co, bi, b, tAt(bi, 0), d, failHere, outcome)
		if last {
			break
		}
	}
	return co
}

func (s *Server) scheduleBatchLocked(co *changeOrder, bi int, b *batch, bs time.Time, d time.Duration, fail bool, outcome FaultKind) {
	a := co.a
	at := func(f float64) time.Time { return bs.Add(time.Duration(f * float64(d))) }
	touched := false
	newPods := make([]*pod, len(b.pods))
	rsHash := ""
	s.scheduleLocked(at(phaseTerminate), func(t time.Time) {
		// An aborted change order starts no new batch; a batch already
		// under way finishes (a terminating pod cannot be un-terminated).
		if !co.running() {
			return
		}
		touched = true
		if co.started.IsZero() {
			co.started = t
		}
		co.current = bi
		b.status, b.start, b.update = coRunning, t, t
		s.setStatusLocked(co, coRunning, t)
		rsHash = s.randAlnum(10)
		for _, p := range b.pods {
			p.status = podTerminating
			a.restarts[p.origID]++
		}
	})
	s.scheduleLocked(at(phasePending), func(t time.Time) {
		if !touched {
			return
		}
		for i, p := range b.pods {
			if a.replace {
				np := s.newPodLocked(a, p.groupID, rsHash, t)
				np.origID = p.origID
				np.status, np.health = podPending, healthNotChecked
				newPods[i] = np
				// The replacement takes the old pod's place in the listing order.
				for j, x := range a.pods {
					if x == p {
						a.pods[j] = np
					}
				}
				continue
			}
			p.status, p.health = podPending, healthNotChecked
			p.restarts++
			p.created = t
			newPods[i] = p
		}
	})
	for _, step := range []struct {
		f      float64
		status string
	}{{phaseInit, podInitializing}, {phaseRunning, podRunning}} {
		s.scheduleLocked(at(step.f), func(time.Time) {
			if !touched {
				return
			}
			for _, p := range newPods {
				if p != nil {
					p.status = step.status
				}
			}
		})
	}
	s.scheduleLocked(at(1), func(t time.Time) {
		if !touched {
			return
		}
		health := healthHealthy
		if fail {
			health = healthReadinessBad
		}
		for _, p := range newPods {
			if p != nil {
				p.health = health
			}
		}
		b.update = t
		if fail {
			b.status = coFailed
		} else {
			b.status = coSucceeded
		}
		if !co.running() {
			return
		}
		switch {
		case fail && outcome == FaultCOStuckSubStatus:
			// The batch failed and needs a manual rollback: SAE keeps the
			// change order "running" with SubStatus 1, holding the lock.
			co.subStatus = 1
			co.errMsg = "Batch 1 failed: instances are not ready. Roll back manually."
			s.recordLocked(Event{Time: t, Action: "ChangeOrderStatus", AppID: a.id, ChangeOrderID: co.id, Code: "1", Detail: "SubStatus 1"})
		case fail:
			co.errMsg = "Batch 1 failed: instances are not ready."
			s.setStatusLocked(co, coFailed, t)
		case bi == len(co.batches)-1:
			s.setStatusLocked(co, coSucceeded, t)
		}
	})
}

// abortLocked terminates a change order (status 6) and releases the lock.
func (s *Server) abortLocked(co *changeOrder, at time.Time) {
	co.aborted = true
	for _, b := range co.batches {
		if !terminal(b.status) && b.status != coPreparing {
			b.status, b.update = coAborted, at
		}
	}
	s.setStatusLocked(co, coAborted, at)
}

// --- listings ---

// statusRank is the Reverse=false order of DescribeApplicationInstances (NEWSDK request model).
var statusRank = map[string]int{
	"Error": 0, "CrashLoopBackOff": 1, "ErrImagePull": 2, "ImagePullBackOff": 3, podPending: 4,
	"Unknown": 5, podTerminating: 6, "NotFound": 7, podInitializing: 8, "Init:0/1": 9, podRunning: 10,
}

func sortPods(pods []*pod, reverse bool) {
	sort.SliceStable(pods, func(i, j int) bool {
		ri, rj := statusRank[pods[i].status], statusRank[pods[j].status]
		if ri != rj {
			if reverse {
				return ri > rj
			}
			return ri < rj
		}
		return false
	})
}

func formatCOTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(shanghai).Format(coTimeLayout)
}

func coTypeText(typ string) string {
	switch typ {
	case CoRestartInstances:
		return "Restart Instances"
	case CoRestartApplication:
		return "Restart Application"
	case CoDeploy:
		return "Deploy Application"
	}
	return typ
}
