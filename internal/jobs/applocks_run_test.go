package jobs

import (
	"context"
	"testing"
	"time"
)

// TestAppLockWaitIsBoundedByTheWindow: a run that waits for another run of
// the same app gives up when its own window closes, as deadline_exceeded,
// and restarts nothing.
func TestAppLockWaitIsBoundedByTheWindow(t *testing.T) {
	f := newFake()
	f.addApp("app-1", "web", 4)
	locks := NewAppLocks()
	release, err := locks.Lock(context.Background(), "app-1") // another run holds the app
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	p := testPolicy()
	p.Window = time.Hour
	out := runFake(t, context.Background(), f, schedule(p, byID("app-1")...), nil, func(r *Runner) { r.AppLocks = locks })
	if len(out.Apps) != 1 || out.Apps[0].Result != ResultDeadlineExceeded {
		t.Fatalf("apps = %+v, want one app deadline_exceeded", out.Apps)
	}
	if out.Result != ResultDeadlineExceeded {
		t.Errorf("run result = %s, want %s", out.Result, ResultDeadlineExceeded)
	}
	if n := f.restartCount(); n != 0 {
		t.Errorf("restarts = %d, want 0 while another run held the app", n)
	}
	if got := f.clk.Now().Sub(t0); got < time.Hour {
		t.Errorf("gave up after %v, want at the window's end (1h)", got)
	}
}
