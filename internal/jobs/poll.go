package jobs

import "time"

// Poller decides when to look at a batch's change order next: the wait
// before the next DescribeChangeOrder. It is a pure function of the state.
// The SAE quota (60 calls a minute per account) is what it spends.
type Poller interface {
	NextPoll(PollState) time.Duration
}

// PollState is what a Poller knows about one batch's change order.
type PollState struct {
	History []time.Duration // durations of this app's change orders already done in this run, oldest first
	Elapsed time.Duration   // since the submit returned
	Polls   int             // looks this batch already had
	// Slack is detection lag that costs nothing: the pause that follows this
	// batch, which the rollout measures from the change order's end as SAE
	// reports it. Zero for an app's last batch or when SAE does not say when
	// change orders end.
	Slack time.Duration
}

// AdaptivePoller predicts a change order's end from the app's batches done
// so far and looks near it; with nothing to predict from, it probes
// geometrically. Zero fields take the defaults in parentheses.
//
// With history: the batches' range [lo, hi] is widened by half an expected
// gap (hi-lo)/(n-1) on each side (with one batch, by Spread). Looks then
// fall on a grid of step = max(2·Lag·mean, 0.8·Slack), starting one step
// above the widened low end or at the widened high end if sooner. Without
// slack the mean lag between the change order's end and the look that sees
// it is about Lag·mean; with a pause to absorb it, the grid is coarse and
// one look at the widened high end is the usual case. Past the widened high
// end the waits grow by Growth, as without history.
type AdaptivePoller struct {
	Initial time.Duration // first look of an app's first batch (30 s)
	Growth  float64       // elapsed time grows by this factor between probes (1.5)
	Min     time.Duration // shortest wait (1 s)
	Max     time.Duration // longest wait while probing (60 s); a predicted look may be later
	Lag     float64       // target mean lag as a fraction of the predicted duration (0.05)
	Spread  float64       // assumed relative spread when one batch is known (0.1)
}

func (p AdaptivePoller) withDefaults() AdaptivePoller {
	if p.Initial <= 0 {
		p.Initial = 30 * time.Second
	}
	if p.Growth <= 1 {
		p.Growth = 1.5
	}
	if p.Min <= 0 {
		p.Min = time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Minute
	}
	if p.Lag <= 0 {
		p.Lag = 0.05
	}
	if p.Spread <= 0 {
		p.Spread = 0.1
	}
	return p
}

// NextPoll implements Poller.
func (p AdaptivePoller) NextPoll(st PollState) time.Duration {
	p = p.withDefaults()
	elapsed, free := st.Elapsed, st.Slack*4/5
	probe := func() time.Duration {
		return max(p.Initial, time.Duration(float64(elapsed)*p.Growth), elapsed+free) - elapsed
	}
	if len(st.History) == 0 {
		return clampDuration(probe(), p.Min, p.Max)
	}
	lo, hi, sum := st.History[0], st.History[0], time.Duration(0)
	for _, d := range st.History {
		lo, hi, sum = min(lo, d), max(hi, d), sum+d
	}
	mean := sum / time.Duration(len(st.History))
	var low, high time.Duration
	if len(st.History) == 1 {
		low, high = time.Duration(float64(lo)*(1-p.Spread)), time.Duration(float64(hi)*(1+p.Spread))
	} else {
		gap := (hi - lo) / time.Duration(2*(len(st.History)-1))
		low, high = lo-gap, hi+gap
	}
	step := max(p.Min, time.Duration(2*p.Lag*float64(mean)), free)
	first := min(low+step, high)
	switch {
	case elapsed < first:
		// Max caps probing, not a prediction: waiting for the predicted end
		// in one sleep is the point.
		return max(first-elapsed, p.Min)
	case elapsed < high+step:
		// Stay on the grid even when a call took a while.
		return max(step-(elapsed-first)%step, p.Min)
	default:
		return clampDuration(max(step, probe()), p.Min, p.Max)
	}
}

// TerraformPoller polls as terraform-provider-alicloud does: after 3 s, then
// waits of 3 s, 6 s, then 10 s.
type TerraformPoller struct{}

// NextPoll implements Poller.
func (TerraformPoller) NextPoll(st PollState) time.Duration {
	switch st.Polls {
	case 0, 1:
		return 3 * time.Second
	case 2:
		return 6 * time.Second
	}
	return 10 * time.Second
}

// FixedPoller waits Every before each look, as a shell loop that sleeps a
// fixed time per batch would.
type FixedPoller struct{ Every time.Duration }

// NextPoll implements Poller.
func (p FixedPoller) NextPoll(PollState) time.Duration {
	return max(p.Every, time.Second)
}

func clampDuration(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}
