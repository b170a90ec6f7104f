package sae

import (
	"sync"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// metaCache keeps what rarely changes about an app — its group IDs and its
// identity — for a short TTL, because SAE's quota (60 calls/min/account) is
// the scarce resource and a rollout lists instances at every health gate.
// Safe for concurrent use. A nil *metaCache caches nothing.
type metaCache struct {
	ttl    time.Duration
	clk    clock.Clock
	mu     sync.Mutex
	groups map[string]cached[[]string]
	apps   map[string]cached[jobs.App]
}

type cached[T any] struct {
	v  T
	at time.Time
}

func newMetaCache(ttl time.Duration, clk clock.Clock) *metaCache {
	if ttl < 0 {
		return nil
	}
	if ttl == 0 {
		ttl = DefaultMetadataTTL
	}
	return &metaCache{ttl: ttl, clk: clk, groups: map[string]cached[[]string]{}, apps: map[string]cached[jobs.App]{}}
}

func lookup[T any](m *metaCache, tbl map[string]cached[T], key string) (T, bool) {
	var zero T
	if m == nil {
		return zero, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := tbl[key]
	if !ok || m.clk.Now().Sub(e.at) >= m.ttl {
		return zero, false
	}
	return e.v, true
}

func store[T any](m *metaCache, tbl map[string]cached[T], key string, v T) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tbl[key] = cached[T]{v: v, at: m.clk.Now()}
}

func (m *metaCache) forget(appID string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.groups, appID)
	delete(m.apps, appID)
}

func (m *metaCache) groupsOf(appID string) ([]string, bool) {
	if m == nil {
		return nil, false
	}
	return lookup(m, m.groups, appID)
}

func (m *metaCache) setGroups(appID string, ids []string) {
	if m == nil {
		return
	}
	store(m, m.groups, appID, append([]string(nil), ids...))
}

func (m *metaCache) app(appID string) (jobs.App, bool) {
	if m == nil {
		return jobs.App{}, false
	}
	return lookup(m, m.apps, appID)
}

func (m *metaCache) setApp(a jobs.App) {
	if m == nil {
		return
	}
	store(m, m.apps, a.ID, a)
}
