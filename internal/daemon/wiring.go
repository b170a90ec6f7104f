package daemon

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/sae"
)

// Hooks receive the SAE client's per-request figures (metrics).
type Hooks struct {
	OnRequest   func(action, code string, d time.Duration)
	OnQuotaWait func(time.Duration)
	// Logger receives the client's debug lines and ambiguous-submit warnings; nil discards.
	Logger *slog.Logger
}

// NewSAEFactory returns the factory the daemon and the one-shot commands use:
// one internal/sae Client per region, built lazily, all sharing ONE quota
// bucket, because SAE's 60 calls/min is per account, whatever the region.
// Credentials come from the SDK's default chain only.
func NewSAEFactory(clk clock.Clock, hooks Hooks) SAEFactory {
	var (
		mu      sync.Mutex
		limiter *sae.Limiter
		quota   [2]int
	)
	return func(cfg *config.Config) (func(region string) (jobs.SAE, error), error) {
		mu.Lock()
		// Keep the bucket (and what it has spent) across reloads unless the quota changed.
		if limiter == nil || quota != [2]int{cfg.SAE.QuotaPerMinute, cfg.SAE.QuotaBurst} {
			limiter = sae.NewLimiter(cfg.SAE.QuotaPerMinute, cfg.SAE.QuotaBurst, clk, hooks.OnQuotaWait)
			quota = [2]int{cfg.SAE.QuotaPerMinute, cfg.SAE.QuotaBurst}
		}
		lim := limiter
		mu.Unlock()
		var cmu sync.Mutex
		clients := map[string]*sae.Client{}
		endpoint := cfg.SAE.Endpoint
		return func(region string) (jobs.SAE, error) {
			cmu.Lock()
			defer cmu.Unlock()
			if c := clients[region]; c != nil {
				return c, nil
			}
			c, err := sae.New(sae.Config{
				Region:    region,
				Endpoint:  endpoint,
				Limiter:   lim,
				Clock:     clk,
				OnRequest: hooks.OnRequest,
				Logger:    hooks.Logger,
			})
			if err != nil {
				return nil, fmt.Errorf("region %s: %w", region, err)
			}
			clients[region] = c
			return c, nil
		}, nil
	}
}
