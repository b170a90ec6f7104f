package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func TestFakeSleepWakesOnlyPastDeadline(t *testing.T) {
	tests := []struct {
		name     string
		sleep    time.Duration
		advances []time.Duration
		wantWake bool
	}{
		{name: "advance short of the deadline keeps it asleep", sleep: 10 * time.Second, advances: []time.Duration{9 * time.Second}},
		{name: "advance to the deadline wakes it", sleep: 10 * time.Second, advances: []time.Duration{10 * time.Second}, wantWake: true},
		{name: "several advances add up", sleep: 10 * time.Second, advances: []time.Duration{4 * time.Second, 7 * time.Second}, wantWake: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake(t0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- f.Sleep(ctx, tc.sleep) }()
			if err := f.BlockUntil(ctx, 1); err != nil {
				t.Fatalf("BlockUntil(1) = %v", err)
			}
			for _, d := range tc.advances {
				f.Advance(d)
			}
			select {
			case err := <-done:
				if !tc.wantWake {
					t.Fatalf("Sleep(%v) returned %v after advancing %v, want still asleep", tc.sleep, err, tc.advances)
				}
				if err != nil {
					t.Fatalf("Sleep(%v) = %v, want nil", tc.sleep, err)
				}
			default:
				if tc.wantWake {
					// The waker closed the channel before Advance returned; give the
					// goroutine its turn without sleeping on the wall clock.
					if err := <-done; err != nil {
						t.Fatalf("Sleep(%v) = %v, want nil", tc.sleep, err)
					}
				} else if got := f.Waiters(); got != 1 {
					t.Fatalf("Waiters() = %d, want 1", got)
				}
			}
		})
	}
}

func TestFakeSleepCancelled(t *testing.T) {
	f := NewFake(t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Sleep(ctx, time.Hour) }()
	if err := f.BlockUntil(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep after cancel = %v, want context.Canceled", err)
	}
	if got := f.Waiters(); got != 0 {
		t.Fatalf("Waiters() after cancel = %d, want 0", got)
	}
	if got := f.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v, want %v (cancel must not move time)", got, t0)
	}
}

func TestFakeAdvanceToNext(t *testing.T) {
	f := NewFake(t0)
	if f.AdvanceToNext() {
		t.Fatalf("AdvanceToNext() with no sleeper = true, want false")
	}
	ctx := context.Background()
	done := make(chan time.Duration, 2)
	for _, d := range []time.Duration{30 * time.Second, 5 * time.Second} {
		go func() {
			_ = f.Sleep(ctx, d)
			done <- d
		}()
	}
	if err := f.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if !f.AdvanceToNext() {
		t.Fatalf("AdvanceToNext() = false with two sleepers")
	}
	if got := <-done; got != 5*time.Second {
		t.Fatalf("first sleeper woken = %v, want 5s", got)
	}
	if got, want := f.Now(), t0.Add(5*time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
	f.AdvanceToNext()
	if got := <-done; got != 30*time.Second {
		t.Fatalf("second sleeper woken = %v, want 30s", got)
	}
}

func TestScaledRunsFaster(t *testing.T) {
	s := NewScaled(t0, 1000)
	start := time.Now()
	if err := s.Sleep(context.Background(), 20*time.Second); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	real := time.Since(start)
	if real > 2*time.Second {
		t.Fatalf("Sleep(20s) at factor 1000 took %v of real time, want about 20ms", real)
	}
	if got := s.Now().Sub(t0); got < 20*time.Second {
		t.Fatalf("emulated time after Sleep(20s) = %v, want >= 20s", got)
	}
}
