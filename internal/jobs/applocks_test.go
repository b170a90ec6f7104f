package jobs

import (
	"context"
	"errors"
	"testing"
)

func TestAppLocks(t *testing.T) {
	tests := []struct {
		name       string
		first      string
		second     string
		wantWait   bool // the second Lock must wait for the first's release
		cancelWait bool // cancel the second while it waits
	}{
		{name: "different apps do not wait for each other", first: "a", second: "b"},
		{name: "same app waits for the release", first: "a", second: "a", wantWait: true},
		{name: "same app gives up when its context ends", first: "a", second: "a", wantWait: true, cancelWait: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewAppLocks()
			rel1, err := l.Lock(context.Background(), tc.first)
			if err != nil {
				t.Fatalf("Lock(%q) = %v", tc.first, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan error, 1)
			go func() {
				rel2, err := l.Lock(ctx, tc.second)
				if err == nil {
					rel2()
				}
				got <- err
			}()
			if !tc.wantWait {
				if err := <-got; err != nil {
					t.Fatalf("second Lock(%q) = %v, want nil", tc.second, err)
				}
				rel1()
				return
			}
			select {
			case err := <-got:
				t.Fatalf("second Lock(%q) returned %v while the first held it", tc.second, err)
			default:
			}
			if tc.cancelWait {
				cancel()
				if err := <-got; !errors.Is(err, context.Canceled) {
					t.Fatalf("second Lock after cancel = %v, want context.Canceled", err)
				}
				if !l.Busy(tc.first) {
					t.Fatalf("Busy(%q) = false while the first still holds it", tc.first)
				}
				rel1()
				return
			}
			rel1()
			rel1() // a second release is harmless
			if err := <-got; err != nil {
				t.Fatalf("second Lock after release = %v, want nil", err)
			}
			if l.Busy(tc.first) {
				t.Fatalf("Busy(%q) = true after every release", tc.first)
			}
		})
	}
}
