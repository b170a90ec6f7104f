package jobs_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/e2etest"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// BenchmarkRollout compares change-order polling strategies on one emulated
// world, measured in EMULATED time (the emulator, the client's quota bucket
// and the engine share one clock.Scaled running benchFactor() times real time):
//
//   - 10 apps × 50 instances, batches of 5 (10 batches an app, 100 in all),
//     pause 30 s, health gate on (the engine always runs it), every app
//     rolled at once (app_concurrency 10; the quota bucket, not the
//     concurrency, is what bounds them);
//   - each app's restart time drawn once, uniformly from 30–90 s, with a
//     fixed seed, and each batch's time drawn uniformly within ±10% of it
//     (emulator AppSpec.RestartJitter);
//   - the client's bucket 30 calls/min (burst 3), the emulator's quota 60/min.
//
// Strategies:
//
//   - adaptive: jobs.AdaptivePoller (the default), one run of all 10 apps;
//   - terraform: jobs.TerraformPoller (3 s, 3 s, 6 s, then every 10 s, as
//     terraform-provider-alicloud polls), one run of all 10 apps;
//   - fixed-sleep: a shell loop per app that sleeps the app's maximum batch
//     time (its restart time +10%, the top of the spread, rounded
//     up to a second) and then checks once, sleeping as long again if the
//     change order is not done: jobs.FixedPoller with that period, one run
//     per app (each loop knows its own app), all runs at once on the shared
//     client. It is given what the others must learn — the restart times —
//     and runs through the same engine, so it keeps the health gate and the
//     pause measured from the change order's end.
//
// Metrics (b.ReportMetric, means over b.N worlds):
//
//   - calls/batch: HTTP calls the emulator received (every action, accepted
//     or rejected) per batch;
//   - lag_ms: mean emulated time from a change order's end (the emulator's
//     Ended) to the next batch's submit on the same app (its change order's
//     Created), minus the pause;
//   - wall/floor: emulated wall time of the whole rollout over
//     max(quota floor = 3 calls per batch ÷ 30 calls/min, restart floor =
//     max over apps of the sum of its change orders' durations plus its
//     pauses);
//   - throttled: Throttling.User answers in the emulator's event log.
//
// Targets for adaptive: calls/batch ≤ 3.4, lag_ms ≤ max(1000, 5% of the
// batch duration), throttled = 0, wall/floor ≤ 1.15. The log line of each
// strategy says which it met.
//
// Reading the figures: internal/sae's ListInstances costs one call once an
// app's group IDs are cached (10 minutes; the groups are read twice per app
// in a 20-minute rollout), and each app starts with a status check, an
// identity read and the plan's listing. The engine's excess over the floor
// of 3 is the first batch's probing: a cold run has no history for it (the
// daemon's jobs.Durations carries it from one night to the next; see
// TestE2EDurationsCarryOverRuns).
func BenchmarkRollout(b *testing.B) {
	strategies := []struct {
		name string
		run  func(ctx context.Context, w *e2etest.World, apps []emulator.AppSpec) benchRun
	}{
		{"strategy=adaptive", func(ctx context.Context, w *e2etest.World, apps []emulator.AppSpec) benchRun {
			return runAll(ctx, w, apps, jobs.AdaptivePoller{})
		}},
		{"strategy=terraform", func(ctx context.Context, w *e2etest.World, apps []emulator.AppSpec) benchRun {
			return runAll(ctx, w, apps, jobs.TerraformPoller{})
		}},
		{"strategy=fixed-sleep", runFixedSleep},
	}
	for _, st := range strategies {
		b.Run(st.name, func(b *testing.B) {
			var sum benchFigures
			for range b.N {
				f := benchOnce(b, st.run)
				sum.add(f)
			}
			n := float64(b.N)
			b.ReportMetric(sum.callsPerBatch/n, "calls/batch")
			b.ReportMetric(sum.lagMS/n, "lag_ms")
			b.ReportMetric(sum.wallOverFloor/n, "wall/floor")
			b.ReportMetric(sum.throttled/n, "throttled")
			b.ReportMetric(0, "ns/op") // real time says nothing here: the clock is scaled
			b.Logf("%s: %s", st.name, sum.detail)
		})
	}
}

const (
	benchApps        = 10
	benchInstances   = 50
	benchBatch       = 5
	benchPause       = 30 * time.Second
	benchClientQuota = 30
	benchServerQuota = 60
	benchSeed        = 20261201
	// benchIdealCalls is the floor of calls per batch with the health gate:
	// the submit, one poll, one listing.
	benchIdealCalls = 3
)

// benchFactor is how much faster than real time the world runs. An HTTP
// call takes about a millisecond of real time, which is benchFactor
// milliseconds of emulated time (0.5 s at 500) and shows in lag; at 500 the
// three strategies take about 9 s of real time together.
// SAE_BENCH_FACTOR overrides it (e.g. 100 for finer figures, slower).
func benchFactor() float64 {
	if f, err := strconv.ParseFloat(os.Getenv("SAE_BENCH_FACTOR"), 64); err == nil && f >= 1 {
		return f
	}
	return 500
}

// benchWorld returns the world: restart times from 30 to 90 s, drawn once.
func benchWorld() []emulator.AppSpec {
	rng := rand.New(rand.NewPCG(benchSeed, benchSeed))
	apps := make([]emulator.AppSpec, benchApps)
	for i := range apps {
		d := 30*time.Second + time.Duration(rng.Int64N(int64(60*time.Second)))
		apps[i] = emulator.AppSpec{
			AppID:         fmt.Sprintf("be0c4000-0000-4000-a000-%012d", i),
			AppName:       fmt.Sprintf("bench-%02d", i),
			NamespaceID:   "cn-hangzhou:bench",
			Instances:     benchInstances,
			RestartTime:   d.Round(time.Second),
			RestartJitter: 0.1,
		}
	}
	return apps
}

func benchPolicy(concurrency int) jobs.Policy {
	p := jobs.DefaultPolicy()
	p.BatchSize = jobs.Quantity{Value: benchBatch}
	p.Pause = benchPause
	p.AppConcurrency = concurrency
	p.Window = 2 * time.Hour
	p.BatchTimeout = 15 * time.Minute
	return p
}

// benchRun is what a strategy's rollout did, on the emulated clock.
type benchRun struct {
	started, ended time.Time
	apps           []jobs.AppOutcome
}

func runAll(ctx context.Context, w *e2etest.World, apps []emulator.AppSpec, p jobs.Poller) benchRun {
	r := w.Runner(nil)
	r.Poller = p
	s := jobs.Schedule{Name: "bench", Region: e2etest.Region, Policy: benchPolicy(len(apps))}
	for _, a := range apps {
		s.Apps = append(s.Apps, jobs.AppSelector{AppID: a.AppID})
	}
	out := r.Run(ctx, s, w.Clock.Now())
	return benchRun{started: out.Started, ended: out.Ended, apps: out.Apps}
}

// runFixedSleep runs one shell-loop-like rollout per app, all at once.
func runFixedSleep(ctx context.Context, w *e2etest.World, apps []emulator.AppSpec) benchRun {
	at := w.Clock.Now()
	outs := make([]jobs.RunOutcome, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Go(func() {
			r := w.Runner(nil)
			every := time.Duration(math.Ceil(a.RestartTime.Seconds()*1.1)) * time.Second
			r.Poller = jobs.FixedPoller{Every: every}
			s := jobs.Schedule{Name: "bench-" + a.AppName, Region: e2etest.Region, Policy: benchPolicy(1),
				Apps: []jobs.AppSelector{{AppID: a.AppID}}}
			outs[i] = r.Run(ctx, s, at)
		})
	}
	wg.Wait()
	run := benchRun{started: at}
	for _, o := range outs {
		if o.Ended.After(run.ended) {
			run.ended = o.Ended
		}
		run.apps = append(run.apps, o.Apps...)
	}
	return run
}

type benchFigures struct {
	callsPerBatch, lagMS, wallOverFloor, throttled float64
	detail                                         string
}

func (f *benchFigures) add(g benchFigures) {
	f.callsPerBatch += g.callsPerBatch
	f.lagMS += g.lagMS
	f.wallOverFloor += g.wallOverFloor
	f.throttled += g.throttled
	f.detail = g.detail // the last world's breakdown
}

// benchOnce builds a fresh world, rolls it with run and measures it from
// the emulator's record. Any broken invariant or unsuccessful app fails b.
func benchOnce(b *testing.B, run func(context.Context, *e2etest.World, []emulator.AppSpec) benchRun) benchFigures {
	b.Helper()
	apps := benchWorld()
	w := e2etest.Start(b, e2etest.Config{
		Factor:         benchFactor(),
		Emulator:       emulator.Config{Apps: apps, QuotaPerMinute: benchServerQuota, Seed: benchSeed},
		QuotaPerMinute: benchClientQuota,
	})
	// Bounded in real time: about 40 emulated minutes at the worst.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := run(ctx, w, apps)
	for _, a := range res.apps {
		if a.Result != jobs.ResultSuccess || len(a.Restarted) != benchInstances {
			b.Fatalf("app %s: %s %s %s (%s), restarted %d, want success with %d",
				a.App.ID, a.Result, a.Reason, a.Code, a.Message, len(a.Restarted), benchInstances)
		}
	}

	var batches int
	var lagSum, restartFloor, batchSum time.Duration
	var lags int
	for _, a := range apps {
		w.CheckInvariants(b, benchBatch, a.AppID)
		cos := w.RestartCOs(a.AppID)
		sort.Slice(cos, func(i, j int) bool { return cos[i].Created.Before(cos[j].Created) })
		batches += len(cos)
		var appFloor time.Duration
		for k, co := range cos {
			d := co.Ended.Sub(co.Created)
			appFloor += d
			batchSum += d
			if k > 0 {
				appFloor += benchPause
				lagSum += co.Created.Sub(cos[k-1].Ended) - benchPause
				lags++
			}
		}
		restartFloor = max(restartFloor, appFloor)
	}
	calls := w.TotalCalls()
	quotaFloor := time.Duration(float64(benchIdealCalls*batches) / benchClientQuota * float64(time.Minute))
	floor := max(quotaFloor, restartFloor)
	wall := res.ended.Sub(res.started)
	lag := lagSum / time.Duration(max(lags, 1))
	meanBatch := batchSum / time.Duration(max(batches, 1))
	f := benchFigures{
		callsPerBatch: float64(calls) / float64(batches),
		lagMS:         float64(lag) / float64(time.Millisecond),
		wallOverFloor: float64(wall) / float64(floor),
		throttled:     float64(w.CountCode("Throttling.User")),
	}
	var perAction []string
	for _, act := range e2etest.Actions {
		if n := w.Server.Calls(act); n > 0 {
			perAction = append(perAction, fmt.Sprintf("%s=%d", act, n))
		}
	}
	lagTarget := max(time.Second, meanBatch/20)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	targets := fmt.Sprintf("targets: calls/batch<=3.4 %s, lag<=%s %s, throttled=0 %s, wall/floor<=1.15 %s",
		verdict(f.callsPerBatch <= 3.4), lagTarget.Round(time.Millisecond), verdict(lag <= lagTarget),
		verdict(f.throttled == 0), verdict(f.wallOverFloor <= 1.15))
	_, waits, waited := w.Limiter.Stats()
	f.detail = fmt.Sprintf("batches=%d calls=%d %v calls/batch=%.2f lag=%s wall=%s floor=%s (quota %s, restart %s) wall/floor=%.3f throttled=%.0f limiter waits=%d (%s); %s",
		batches, calls, perAction, f.callsPerBatch, lag.Round(time.Millisecond), wall.Round(time.Second), floor.Round(time.Second),
		quotaFloor.Round(time.Second), restartFloor.Round(time.Second), f.wallOverFloor, f.throttled, waits, waited.Round(time.Second), targets)
	return f
}
