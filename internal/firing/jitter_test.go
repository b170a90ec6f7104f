package firing

import (
	"testing"
	"time"
)

func TestJitter(t *testing.T) {
	fire := time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		maxDelay time.Duration
		key      string
		seed     uint64
		wantSame bool // the fire is returned unchanged
	}{
		{name: "no jitter", maxDelay: 0, key: "nightly", wantSame: true},
		{name: "negative bound is no jitter", maxDelay: -time.Minute, key: "nightly", wantSame: true},
		{name: "five minutes", maxDelay: 5 * time.Minute, key: "nightly"},
		{name: "five minutes with a seed", maxDelay: 5 * time.Minute, key: "nightly", seed: 42},
		{name: "sub-second bound", maxDelay: 500 * time.Millisecond, key: "nightly"},
		{name: "one second bound always lands on the fire", maxDelay: time.Second, key: "nightly", wantSame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Jitter(fire, tt.maxDelay, tt.key, tt.seed)
			if again := Jitter(fire, tt.maxDelay, tt.key, tt.seed); !again.Equal(got) {
				t.Errorf("Jitter() = %v then %v, want the same twice", got, again)
			}
			if tt.wantSame {
				if !got.Equal(fire) {
					t.Errorf("Jitter() = %v, want %v", got, fire)
				}
				return
			}
			if d := got.Sub(fire); d < 0 || d >= tt.maxDelay {
				t.Errorf("Jitter() offset = %v, want in [0, %v)", d, tt.maxDelay)
			}
		})
	}
}

func TestJitterBoundsAndSpread(t *testing.T) {
	const maxDelay = 5 * time.Minute
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names := []string{"nightly-a", "nightly-b", "weekly", "hourly"}
	offsets := map[time.Duration]int{}
	for i := range 2000 {
		fire := base.Add(time.Duration(i) * time.Hour)
		for _, name := range names {
			d := Jitter(fire, maxDelay, name, 0).Sub(fire)
			if d < 0 || d >= maxDelay {
				t.Fatalf("Jitter(%v, %q) offset = %v, want in [0, %v)", fire, name, d, maxDelay)
			}
			if d%time.Second != 0 {
				t.Fatalf("Jitter(%v, %q) offset = %v, want whole seconds", fire, name, d)
			}
			offsets[d]++
		}
	}
	// 8000 draws over 300 seconds: every second should be hit, none wildly often.
	if len(offsets) != 300 {
		t.Errorf("distinct offsets = %d, want 300", len(offsets))
	}
	for d, n := range offsets {
		if n > 80 {
			t.Errorf("offset %v drawn %d times, want about 27", d, n)
		}
	}
}

func TestJitterDependsOnKeyFireAndSeed(t *testing.T) {
	fire := time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)
	const maxDelay = time.Hour
	ref := Jitter(fire, maxDelay, "nightly", 0)
	tests := []struct {
		name string
		got  time.Duration
	}{
		{name: "another schedule at the same fire", got: Jitter(fire, maxDelay, "nightly-2", 0).Sub(fire)},
		{name: "the same schedule the next day", got: Jitter(fire.Add(24*time.Hour), maxDelay, "nightly", 0).Sub(fire.Add(24 * time.Hour))},
		{name: "another seed", got: Jitter(fire, maxDelay, "nightly", 7).Sub(fire)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got == ref.Sub(fire) {
				t.Errorf("offset = %v, want it to differ from %v", tt.got, ref.Sub(fire))
			}
		})
	}
	// The zone of the fire's presentation is not part of its identity.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	if got := Jitter(fire.In(ny), maxDelay, "nightly", 0); !got.Equal(ref) {
		t.Errorf("Jitter(in New York) = %v, want %v", got, ref)
	}
}
