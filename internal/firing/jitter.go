package firing

import (
	"hash/fnv"
	"time"
)

// Jitter returns fire delayed by an offset in [0, maxDelay) that is a
// deterministic function of (seed, key, fire): the same schedule (key, its
// name) and fire always get the same offset, so `scheduler next`, the API and
// the daemon agree and tests are exact, while different schedules firing at
// the same instant spread over the bound. seed lets an operator reshuffle the
// spread (0 is a fine default). The offset has whole-second resolution when
// maxDelay is at least one second. A maxDelay <= 0 returns fire unchanged.
//
// Jitter delays only the start: the fire keeps its identity (Fire.At), and
// the starting deadline is still measured from Fire.At, so maxDelay should be
// shorter than the deadline (the config validates jitter < window).
func Jitter(fire time.Time, maxDelay time.Duration, key string, seed uint64) time.Time {
	if maxDelay <= 0 {
		return fire
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	x := h.Sum64() ^ seed
	x = mix(x ^ uint64(fire.Unix()))
	x = mix(x ^ uint64(fire.Nanosecond()))
	if maxDelay >= time.Second {
		return fire.Add(time.Duration(x%uint64(maxDelay/time.Second)) * time.Second)
	}
	return fire.Add(time.Duration(x % uint64(maxDelay)))
}

// mix is the splitmix64 finaliser: it spreads every input bit over the output,
// so neighbouring fire times do not get neighbouring offsets.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
