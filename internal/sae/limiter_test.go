package sae

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

// waitAsync runs l.Wait in a goroutine and returns its result channel.
func waitAsync(ctx context.Context, l *Limiter) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- l.Wait(ctx) }()
	return ch
}

func TestLimiterBurstThenRate(t *testing.T) {
	tests := []struct {
		name      string
		perMinute int
		burst     int
		wantFree  int           // calls that pass without waiting
		wantNext  time.Duration // wait of the first call past the burst
	}{
		{name: "default 30 per minute, burst 3", perMinute: 0, burst: 0, wantFree: 3, wantNext: 2 * time.Second},
		{name: "60 per minute, burst 1", perMinute: 60, burst: 1, wantFree: 1, wantNext: time.Second},
		{name: "2 per minute caps the default burst at 2", perMinute: 2, burst: 0, wantFree: 2, wantNext: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			var mu sync.Mutex
			var waits []time.Duration
			l := NewLimiter(tt.perMinute, tt.burst, clk, func(d time.Duration) {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
			})
			ctx := context.Background()
			for i := range tt.wantFree {
				if err := l.Wait(ctx); err != nil {
					t.Fatalf("Wait() #%d = %v, want nil", i, err)
				}
			}
			done := waitAsync(ctx, l)
			if err := clk.BlockUntil(ctx, 1); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.wantNext - time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Wait() returned %v before %v", err, tt.wantNext)
			default:
			}
			clk.Advance(time.Millisecond)
			if err := <-done; err != nil {
				t.Fatalf("Wait() = %v, want nil", err)
			}
			calls, n, waited := l.Stats()
			if calls != int64(tt.wantFree+1) || n != 1 || waited != tt.wantNext {
				t.Errorf("Stats() = %d, %d, %v, want %d, 1, %v", calls, n, waited, tt.wantFree+1, tt.wantNext)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(waits) != 1 || waits[0] != tt.wantNext {
				t.Errorf("onWait calls = %v, want [%v]", waits, tt.wantNext)
			}
		})
	}
}

func TestLimiterSharedByConcurrentCallers(t *testing.T) {
	clk := clock.NewFake(t0)
	l := NewLimiter(30, 3, clk, nil)
	ctx := context.Background()
	const callers = 9
	done := make(chan error, callers)
	for range callers {
		go func() { done <- l.Wait(ctx) }()
	}
	// 3 pass at once; the other 6 sleep, spaced 2s apart.
	if err := clk.BlockUntil(ctx, callers-3); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatalf("Wait() = %v, want nil", err)
		}
	}
	for i := range callers - 3 {
		clk.Advance(2 * time.Second)
		if err := <-done; err != nil {
			t.Fatalf("Wait() = %v, want nil", err)
		}
		select {
		case <-done:
			t.Fatalf("two callers woke after step %d, want one per 2s", i)
		default:
		}
	}
	_, waits, waited := l.Stats()
	// The waits are 2, 4, ..., 12 seconds.
	if waits != 6 || waited != 42*time.Second {
		t.Errorf("Stats() waits, waited = %d, %v, want 6, 42s", waits, waited)
	}
}

func TestLimiterWaitCancelled(t *testing.T) {
	clk := clock.NewFake(t0)
	l := NewLimiter(60, 1, clk, nil)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := waitAsync(ctx, l)
	if err := clk.BlockUntil(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait() = %v, want context.Canceled", err)
	}
	// The cancelled reservation gave its token back: one second later the
	// next caller passes at once.
	clk.Advance(time.Second)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatalf("Wait() after cancel = %v, want nil", err)
	}
	if _, waits, _ := l.Stats(); waits != 1 {
		t.Errorf("Stats() waits = %d, want 1", waits)
	}
}

func TestLimiterPause(t *testing.T) {
	tests := []struct {
		name     string
		pauses   []time.Duration
		wantWait time.Duration
	}{
		{name: "a throttling pause holds every caller", pauses: []time.Duration{5 * time.Second}, wantWait: 5 * time.Second},
		{name: "a shorter pause does not shorten a longer one", pauses: []time.Duration{8 * time.Second, 2 * time.Second}, wantWait: 8 * time.Second},
		{name: "a server hint is capped at a minute", pauses: []time.Duration{10 * time.Minute}, wantWait: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			var got time.Duration
			l := NewLimiter(30, 3, clk, func(d time.Duration) { got = d })
			for _, p := range tt.pauses {
				l.Pause(p)
			}
			done := waitAsync(context.Background(), l)
			if err := clk.BlockUntil(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.wantWait)
			if err := <-done; err != nil {
				t.Fatalf("Wait() = %v, want nil", err)
			}
			if got != tt.wantWait {
				t.Errorf("wait = %v, want %v", got, tt.wantWait)
			}
		})
	}
}
