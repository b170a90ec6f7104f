package jobs

import (
	"fmt"
	"time"
)

// Schedule is one validated entry of the schedules file. internal/config
// builds it; nothing in jobs parses YAML.
type Schedule struct {
	Name     string
	Cron     string         // the expression as written (5 or 6 fields, or a descriptor)
	Location *time.Location // the schedule's zone (timezone, defaults.timezone, else UTC)
	Region   string         // SAE region (schedule's, else sae.region)
	Apps     []AppSelector
	Policy   Policy
	Jitter   time.Duration
	Suspend  bool
	DST      DSTPolicy
	// StartingDeadline bounds how late a missed fire may still start (default: Policy.Window).
	StartingDeadline time.Duration
	Labels           map[string]string // free-form, exported on schedule_info
	Source           string            // "file:line" where the schedule is defined
}

// AppSelector picks applications: either one AppID, or every app of a
// namespace whose name matches AppName (a path.Match glob) and no Exclude glob.
type AppSelector struct {
	AppID       string   `json:"app_id,omitempty"`
	NamespaceID string   `json:"namespace_id,omitempty"`
	AppName     string   `json:"app_name,omitempty"`
	Exclude     []string `json:"exclude,omitempty"`
}

func (s AppSelector) String() string {
	if s.AppID != "" {
		return s.AppID
	}
	return s.NamespaceID + "/" + s.AppName
}

// DSTPolicy says what happens to a fire that falls in a spring-forward gap.
type DSTPolicy string

// The DST policies.
const (
	DSTRunAtTransition DSTPolicy = "run_at_transition"
	DSTSkip            DSTPolicy = "skip"
)

// StuckPolicy says what to do with the daemon's own change order that is
// stuck (status 8, 11 or SubStatus 1) past batch_timeout.
type StuckPolicy string

// The stuck policies.
const (
	StuckAbort StuckPolicy = "abort"
	StuckLeave StuckPolicy = "leave"
)

// Policy is how a schedule's run behaves. Every field may come from the
// file's defaults block.
type Policy struct {
	BatchSize        Quantity      // instances per batch (count or percent of the plan)
	MinReady         Quantity      // instances that must stay Running and healthy (zero: none)
	Pause            time.Duration // between batches
	LockWait         time.Duration // how long to wait for someone else's change order (0: don't)
	BatchTimeout     time.Duration // bounds submit + change order + health gate
	Window           time.Duration // no new batch after scheduled instant + Window
	MaxFailedBatches int           // per app; 0 stops the app at its first failure
	AppConcurrency   int           // apps rolled at once within the run (>= 1)
	MaxFailedApps    int           // the run stops starting apps after this many failed (0: at the first)
	MinAge           time.Duration // skip instances younger than this (0: none)
	OnStuck          StuckPolicy
}

// DefaultPolicy is the built-in policy used when the file has no defaults.
func DefaultPolicy() Policy {
	return Policy{
		BatchSize:      Quantity{Value: 25, Percent: true},
		Pause:          30 * time.Second,
		LockWait:       30 * time.Minute,
		BatchTimeout:   15 * time.Minute,
		Window:         2 * time.Hour,
		AppConcurrency: 1,
		OnStuck:        StuckAbort,
	}
}

// Quantity is a count or a percentage.
type Quantity struct {
	Value   int
	Percent bool
}

// IsZero reports whether q is unset or zero.
func (q Quantity) IsZero() bool { return q.Value == 0 }

// Of resolves q against total, rounding a percentage up.
func (q Quantity) Of(total int) int {
	if !q.Percent {
		return q.Value
	}
	return (q.Value*total + 99) / 100
}

func (q Quantity) String() string {
	if q.Percent {
		return fmt.Sprintf("%d%%", q.Value)
	}
	return fmt.Sprintf("%d", q.Value)
}
