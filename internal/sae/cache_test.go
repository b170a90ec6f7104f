package sae_test

import (
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/sae"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// TestE2EMetadataCache shows that group IDs and an app's identity are read
// once per TTL, that instances are listed fresh every time, and that a
// cached group SAE no longer knows is read again instead of failing.
func TestE2EMetadataCache(t *testing.T) {
	tests := []struct {
		name       string
		ttl        time.Duration
		wait       time.Duration // emulated time between the two listings
		wantGroups int           // DescribeApplicationGroups calls for two listings
		wantConfig int           // DescribeApplicationConfig calls for two DescribeApplication
	}{
		{name: "within the TTL groups and identity are reused", ttl: 10 * time.Minute, wait: time.Minute, wantGroups: 1, wantConfig: 1},
		{name: "past the TTL they are read again", ttl: 10 * time.Minute, wait: 11 * time.Minute, wantGroups: 2, wantConfig: 2},
		{name: "a negative TTL disables the cache", ttl: -1, wait: 0, wantGroups: 2, wantConfig: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A factor of 600 makes 11 emulated minutes 1.1 s of real time, and
			// keeps a loaded machine's few milliseconds between two calls well
			// inside the 10-minute TTL (at 60000 they were not).
			w := newWorld(t, emulator.Config{QuotaPerMinute: -1}, 600)
			c := w.client(t, func(cfg *sae.Config) { cfg.MetadataTTL = tt.ttl })
			ctx := ctxT(t)
			first, err := c.ListInstances(ctx, appWeb)
			if err != nil {
				t.Fatalf("ListInstances() = %v", err)
			}
			if _, err := c.DescribeApplication(ctx, appWeb); err != nil {
				t.Fatalf("DescribeApplication() = %v", err)
			}
			if tt.wait > 0 {
				if err := w.clk.Sleep(ctx, tt.wait); err != nil {
					t.Fatal(err)
				}
			}
			second, err := c.ListInstances(ctx, appWeb)
			if err != nil {
				t.Fatalf("second ListInstances() = %v", err)
			}
			app, err := c.DescribeApplication(ctx, appWeb)
			if err != nil {
				t.Fatalf("second DescribeApplication() = %v", err)
			}
			if len(second) != len(first) || len(first) == 0 {
				t.Fatalf("ListInstances() = %d then %d instances, want the same non-zero count", len(first), len(second))
			}
			if app.ID != appWeb || app.Name == "" {
				t.Fatalf("DescribeApplication() = %+v, want app %s with its name", app, appWeb)
			}
			if got := w.srv.Calls("DescribeApplicationGroups"); got != tt.wantGroups {
				t.Errorf("DescribeApplicationGroups calls = %d, want %d", got, tt.wantGroups)
			}
			if got := w.srv.Calls("DescribeApplicationConfig"); got != tt.wantConfig {
				t.Errorf("DescribeApplicationConfig calls = %d, want %d", got, tt.wantConfig)
			}
			if got := w.srv.Calls("DescribeApplicationInstances"); got < 2 {
				t.Errorf("DescribeApplicationInstances calls = %d, want every listing to read instances", got)
			}
		})
	}
}
