package jobs

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// AppPlan is what a run will do to one application: the instances to
// restart, oldest first, cut into batches. When the app will not be rolled,
// Result says why (skipped, failed, or success with nothing to do) and
// Batches is empty.
type AppPlan struct {
	App       App        `json:"app"`
	Total     int        `json:"total"`      // instances listed at plan time
	Healthy   int        `json:"healthy"`    // of which Running and healthy
	BatchSize int        `json:"batch_size"` // after min_ready shrinking
	MinReady  int        `json:"min_ready"`  // instances that must stay Running and healthy
	Instances []string   `json:"instances"`  // to restart, in order
	Fresh     []string   `json:"fresh,omitempty"`
	Batches   [][]string `json:"batches"`
	Warnings  []string   `json:"warnings,omitempty"`
	Result    Result     `json:"result,omitempty"`
	Reason    string     `json:"reason,omitempty"`  // skip reason or our own failure code
	Code      string     `json:"code,omitempty"`    // SAE's error code when SAE refused
	Message   string     `json:"message,omitempty"` // SAE's or our message
}

// Runnable reports whether the plan has batches to roll.
func (p AppPlan) Runnable() bool { return p.Result == "" && len(p.Batches) > 0 }

// RunPlan is the plan of a whole run, as `scheduler plan` prints it.
type RunPlan struct {
	Schedule string    `json:"schedule"`
	At       time.Time `json:"at"`
	Policy   Policy    `json:"-"`
	Apps     []AppPlan `json:"apps"`
}

// WriteText prints the plan for people: one block per app with its result
// or batches and its warnings. It returns the first write error.
func (p RunPlan) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "schedule %s at %s: %d apps\n", p.Schedule, p.At.Format("2006-01-02T15:04:05Z07:00"), len(p.Apps))
	for _, a := range p.Apps {
		name := a.App.ID
		switch {
		case a.App.ID == "":
			name = strings.TrimPrefix(a.App.NamespaceID+"/"+a.App.Name, "/")
		case a.App.Name != "":
			name = fmt.Sprintf("%s (%s)", a.App.Name, a.App.ID)
		}
		if a.Result != "" {
			why := a.Reason
			if a.Code != "" {
				why = strings.TrimSpace(why + " " + a.Code)
			}
			fmt.Fprintf(bw, "app %s: %s %s", name, a.Result, why)
			if a.Message != "" {
				fmt.Fprintf(bw, ": %s", a.Message)
			}
			fmt.Fprintln(bw)
		} else {
			fmt.Fprintf(bw, "app %s: %d of %d instances in %d batches of up to %d", name, len(a.Instances), a.Total, len(a.Batches), a.BatchSize)
			if a.MinReady > 0 {
				fmt.Fprintf(bw, ", min_ready %d", a.MinReady)
			}
			fmt.Fprintln(bw)
			for i, b := range a.Batches {
				fmt.Fprintf(bw, "  batch %d/%d: %s\n", i+1, len(a.Batches), strings.Join(b, " "))
			}
		}
		for _, warn := range a.Warnings {
			fmt.Fprintf(bw, "  warning: %s\n", warn)
		}
	}
	return bw.Flush()
}

// unhealthy are the health statuses that fail the gate. Anything else
// (Healthy, WithoutHealthCheckConfig, WithoutLivenessConfig,
// WithoutReadinessConfig, and statuses SAE may add) passes.
var unhealthy = map[string]bool{
	"NotCheckedYet":      true,
	"LivenessUnhealthy":  true,
	"ReadinessUnhealthy": true,
	"Unhealthy":          true,
}

// Ready reports whether an instance is Running with a passing health status.
func Ready(in Instance) bool {
	return in.ContainerStatus == "Running" && !unhealthy[in.HealthStatus]
}

// neverDeployed reports whether an app's status and its (empty) listing say
// it was never deployed: SAE then reports CurrentStatus UNKNOWN and lists no
// instance, and only a RestartInstances would say Application.NotDeployYet.
// Such an app is skipped as not_deployed rather than app_stopped.
func neverDeployed(st AppStatus, instances []Instance) bool {
	return len(instances) == 0 && st.CurrentStatus == AppUnknown
}

const neverDeployedMsg = "the app has no instances and its status is UNKNOWN: not deployed"

// OutageWarning is the plan's warning for a 1-instance app.
const OutageWarning = "restarting a 1-instance app is an outage"

// PlanApp decides, without any I/O, which instances of app a run restarts
// and in which batches. Instances younger than p.MinAge at now are left out
// (already fresh); the rest are ordered oldest first by CreateTime, then ID.
// The batch size is p.BatchSize of all the app's instances at plan time,
// rounded up, at least 1; with p.MinReady set it shrinks so that
// (ready instances - batch) >= MinReady, where MinReady is a count or a
// percentage of all instances rounded up. The result is deterministic.
//
// No instances: skipped (app_stopped). All fresh: success with reason
// all_fresh and no batches. min_ready leaving a batch of 0: failed
// (min_ready_unsatisfiable).
func PlanApp(app App, instances []Instance, p Policy, now time.Time) AppPlan {
	plan := AppPlan{App: app, Total: len(instances)}
	if len(instances) == 0 {
		plan.Result, plan.Reason, plan.Message = ResultSkipped, ReasonAppStopped, "the app has no instances"
		return plan
	}
	sorted := append([]Instance(nil), instances...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.CreateTime.Equal(b.CreateTime) {
			return a.CreateTime.Before(b.CreateTime)
		}
		return a.ID < b.ID
	})
	seen := make(map[string]bool, len(sorted))
	for _, in := range sorted {
		if seen[in.ID] || in.ID == "" {
			continue // SAE paging can repeat an item; restart it once
		}
		seen[in.ID] = true
		if Ready(in) {
			plan.Healthy++
		}
		// A zero CreateTime is unknown age: restart it rather than trust it fresh.
		if p.MinAge > 0 && !in.CreateTime.IsZero() && now.Sub(in.CreateTime) < p.MinAge {
			plan.Fresh = append(plan.Fresh, in.ID)
			continue
		}
		plan.Instances = append(plan.Instances, in.ID)
	}
	plan.Total = len(seen)
	if plan.Total == 1 {
		plan.Warnings = append(plan.Warnings, OutageWarning)
	}
	if len(plan.Fresh) > 0 {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("%d instances younger than min_age %s are left out", len(plan.Fresh), p.MinAge))
	}
	if len(plan.Instances) == 0 {
		plan.Result, plan.Reason = ResultSuccess, ReasonAllFresh
		plan.Message = fmt.Sprintf("all %d instances are younger than min_age %s", plan.Total, p.MinAge)
		return plan
	}

	size := max(p.BatchSize.Of(plan.Total), 1)
	if !p.MinReady.IsZero() {
		plan.MinReady = p.MinReady.Of(plan.Total)
		if room := plan.Healthy - plan.MinReady; size > room {
			if room <= 0 {
				plan.Result, plan.Reason = ResultFailed, CodeMinReadyUnsatisfiable
				plan.Message = fmt.Sprintf("min_ready %s needs %d of %d instances ready, %d are: no batch fits", p.MinReady, plan.MinReady, plan.Total, plan.Healthy)
				return plan
			}
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("min_ready %s shrinks batches from %d to %d", p.MinReady, size, room))
			size = room
		}
	}
	plan.BatchSize = size
	for i := 0; i < len(plan.Instances); i += size {
		plan.Batches = append(plan.Batches, slices.Clone(plan.Instances[i:min(i+size, len(plan.Instances))]))
	}
	return plan
}
