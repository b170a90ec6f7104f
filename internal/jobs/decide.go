package jobs

import (
	"fmt"
	"time"
)

// Verdict is what a change order's state means to a rollout.
type Verdict string

// The verdicts.
const (
	VerdictInProgress Verdict = "in_progress" // 0, 1, 9, 12 (and unknown statuses): keep polling
	VerdictSucceeded  Verdict = "succeeded"   // 2
	VerdictFailed     Verdict = "failed"      // 3, 6, 10
	VerdictAbnormal   Verdict = "abnormal"    // SubStatus 1: it never finishes by itself
	VerdictNeedsHuman Verdict = "needs_human" // 8, 11: waits for a confirmation or an approval
)

// Terminal reports whether polling can stop: succeeded or failed. Abnormal
// and needs-human change orders still hold SAE's lock.
func (v Verdict) Terminal() bool { return v == VerdictSucceeded || v == VerdictFailed }

// ClassifyChangeOrder says what co's Status and SubStatus mean. A terminal
// Status wins over SubStatus; an unknown Status counts as in progress, so
// batch_timeout bounds it rather than a guess.
func ClassifyChangeOrder(co ChangeOrder) Verdict {
	switch co.Status {
	case COSucceeded:
		return VerdictSucceeded
	case COFailed, COAborted, COSystemFailed:
		return VerdictFailed
	}
	if co.SubStatus == 1 {
		return VerdictAbnormal
	}
	switch co.Status {
	case COWaitConfirm, COWaitApproval:
		return VerdictNeedsHuman
	}
	return VerdictInProgress
}

// JudgeHealth is the health gate after a batch's change order succeeded.
// start is the listing at the batch's start, restarted the batch's instance
// IDs, now the fresh listing. It passes when the count of instances (not
// Terminating) is back to the start's, every restarted instance still listed
// is Ready, every instance new since the start (a replacement: IDs may change
// on restart) is Ready, and there are at least as many new instances as
// restarted ones that vanished. why says what failed; it is empty on success.
func JudgeHealth(start []Instance, restarted []string, now []Instance) (ok bool, why string) {
	before := make(map[string]bool, len(start))
	for _, in := range start {
		before[in.ID] = true
	}
	listed := make(map[string]Instance, len(now))
	count, fresh, notReady := 0, 0, 0
	for _, in := range now {
		listed[in.ID] = in
		if in.ContainerStatus != "Terminating" {
			count++
		}
		if !before[in.ID] {
			fresh++
			if !Ready(in) {
				notReady++
			}
		}
	}
	want := 0
	for _, in := range start {
		if in.ContainerStatus != "Terminating" {
			want++
		}
	}
	if count < want {
		return false, fmt.Sprintf("%d instances, want %d back", count, want)
	}
	vanished := 0
	for _, id := range restarted {
		in, ok := listed[id]
		if !ok {
			vanished++
			continue
		}
		if !Ready(in) {
			notReady++
		}
	}
	if notReady > 0 {
		return false, fmt.Sprintf("%d restarted or replacement instances not ready", notReady)
	}
	if fresh < vanished {
		return false, fmt.Sprintf("%d restarted instances gone, %d replacements", vanished, fresh)
	}
	return true, ""
}

// Backoff is the wait before retry number attempt (0-based) of a retryable
// SAE error: 3 s doubling to 60 s, with ±20% jitter from rnd (a source of
// floats in [0, 1); nil means no jitter).
func Backoff(attempt int, rnd func() float64) time.Duration {
	d := 3 * time.Second
	for i := 0; i < attempt && d < time.Minute; i++ {
		d *= 2
	}
	d = min(d, time.Minute)
	if rnd == nil {
		return d
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rnd()))
}

// LockPollInterval is the wait before look number attempt (0-based) at an
// application whose change-order lock someone else holds: 10 s growing by
// half each time to 60 s.
func LockPollInterval(attempt int) time.Duration {
	d := 10 * time.Second
	for i := 0; i < attempt && d < time.Minute; i++ {
		d += d / 2
	}
	return min(d, time.Minute)
}

// gateInterval is the wait before re-listing instances when the health gate
// has not passed yet: 5 s doubling to 30 s.
func gateInterval(attempt int) time.Duration {
	d := 5 * time.Second
	for i := 0; i < attempt && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}
