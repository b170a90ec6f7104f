package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SAE is the set of Serverless App Engine operations a rollout needs.
// internal/sae implements it on the official SDK; tests of the rollout loop
// may use a fake. Implementations must be safe for concurrent use.
//
// Every method returns either nil or an error that wraps *SAEError (so
// errors.As works), or ctx.Err() when the context ended.
type SAE interface {
	// ListApplications returns every application of the namespace (all pages).
	// Name matching (globs, excludes) is done by the caller.
	ListApplications(ctx context.Context, namespaceID string) ([]App, error)
	// DescribeApplication returns one application's identity (name, namespace).
	DescribeApplication(ctx context.Context, appID string) (App, error)
	// DescribeApplicationStatus returns the app's status and its last change order.
	DescribeApplicationStatus(ctx context.Context, appID string) (AppStatus, error)
	// ListInstances returns every instance of every group of the app (all pages).
	ListInstances(ctx context.Context, appID string) ([]Instance, error)
	// RestartInstances submits one restart change order and returns its ID.
	// It is never retried blindly: after an ambiguous outcome (timeout, 5xx,
	// lost connection) the implementation looks for the change order the call
	// may have created (FindRestartChangeOrder) before it tries again, so one
	// batch never becomes two change orders. If it cannot tell, it returns an
	// error of class ClassAmbiguous.
	RestartInstances(ctx context.Context, appID string, instanceIDs []string) (changeOrderID string, err error)
	// DescribeChangeOrder returns a change order's state.
	DescribeChangeOrder(ctx context.Context, changeOrderID string) (ChangeOrder, error)
	// ListChangeOrders lists the app's change orders; status < 0 means any status.
	// Items carry no targets.
	ListChangeOrders(ctx context.Context, appID string, status int) ([]ChangeOrderSummary, error)
	// FindRestartChangeOrder looks for a CoRestartInstances change order of the
	// app whose targets are exactly instanceIDs and which was created at or
	// after notBefore (with slack for SAE's whole-second, zone-less CreateTime).
	// It checks DescribeApplicationStatus.LastChangeOrderId first. found=false
	// with err=nil means SAE positively has no such change order.
	FindRestartChangeOrder(ctx context.Context, appID string, instanceIDs []string, notBefore time.Time) (co ChangeOrder, found bool, err error)
	// AbortChangeOrder aborts a change order. Callers only ever abort their own.
	AbortChangeOrder(ctx context.Context, changeOrderID string) error
}

// App identifies an SAE application.
type App struct {
	ID          string `json:"app_id"`
	Name        string `json:"app_name,omitempty"`
	NamespaceID string `json:"namespace_id,omitempty"`
	Region      string `json:"region,omitempty"`
}

// Application status values (DescribeApplicationStatus.CurrentStatus).
const (
	AppRunning = "RUNNING"
	AppStopped = "STOPPED"
	AppUnknown = "UNKNOWN"
)

// AppStatus is DescribeApplicationStatus' answer.
type AppStatus struct {
	CurrentStatus          string // RUNNING, STOPPED, UNKNOWN
	LastChangeOrderID      string
	LastChangeOrderRunning bool
	LastChangeOrderStatus  string // READY, RUNNING, SUCCESS, FAIL, ABORT, WAIT_BATCH_CONFIRM, ...
	SubStatus              string // NORMAL, RUNNING_BUT_HAS_ERROR (casing varies)
	RunningInstances       int
}

// Instance is one SAE application instance (a pod).
type Instance struct {
	ID              string    `json:"instance_id"`
	GroupID         string    `json:"group_id,omitempty"`
	ContainerStatus string    `json:"container_status,omitempty"` // Running, Pending, Terminating, ...
	HealthStatus    string    `json:"health_status,omitempty"`    // Healthy, NotCheckedYet, WithoutHealthCheckConfig, ...
	Restarts        int64     `json:"restarts,omitempty"`
	CreateTime      time.Time `json:"create_time"` // CreateTimeStamp (ms)
}

// Change-order status codes (DescribeChangeOrder.Status, also Pipeline.Status).
const (
	COPreparing       = 0
	CORunning         = 1
	COSucceeded       = 2
	COFailed          = 3
	COAborted         = 6
	COWaitConfirm     = 8 // waiting for a manual batch confirmation
	COWaitAutoBatch   = 9 // waiting for the next automatic batch
	COSystemFailed    = 10
	COWaitApproval    = 11
	COApprovedPending = 12
)

// ChangeOrder is DescribeChangeOrder's answer.
type ChangeOrder struct {
	ID           string
	AppID        string
	Status       int
	SubStatus    int // 1 = abnormal: it never finishes by itself
	CoTypeCode   string
	Targets      []string
	CreateTime   time.Time // SAE gives whole seconds and no zone; see internal/sae
	BatchCount   int
	ErrorMessage string
	// FinishTime is when SAE says the change order ended (the last
	// pipeline's UpdateTime), zero when unknown or not ended. With CreateTime
	// it gives the duration on SAE's own clock, which adaptive polling
	// predicts from.
	FinishTime time.Time
}

// ChangeOrderSummary is one ListChangeOrders item (no targets).
type ChangeOrderSummary struct {
	ID         string
	Status     int
	CoTypeCode string
	CreateTime time.Time
}

// ErrorClass says what a caller should do about a failed SAE call.
type ErrorClass string

// The error classes. internal/sae is the one place that assigns them.
const (
	// ClassLock: Application.ChangerOrderRunning — another change order holds the app.
	ClassLock ErrorClass = "lock"
	// ClassRetryable: System.Upgrading, Application.InvalidStatus, Throttling*,
	// HTTP 5xx and transport errors on reads.
	ClassRetryable ErrorClass = "retryable"
	// ClassAmbiguous: a mutating call that may have been carried out.
	ClassAmbiguous ErrorClass = "ambiguous"
	// ClassNotDeployed: Application.NotDeployYet — skip the app.
	ClassNotDeployed ErrorClass = "not_deployed"
	// ClassStaleInstances: InvalidParameter.Obviously on RestartInstances —
	// re-list once, drop vanished IDs, resubmit.
	ClassStaleInstances ErrorClass = "stale_instances"
	// ClassAccount: the account cannot act (arrears, quota, bad keys, clock);
	// every run of the account ends at once.
	ClassAccount ErrorClass = "account"
	// ClassFatal: any other documented error; the app fails with SAE's code.
	ClassFatal ErrorClass = "fatal"
	// ClassUnknown: anything not recognised.
	ClassUnknown ErrorClass = "unknown"
)

// SAEError is a classified SAE failure. It never carries credentials.
type SAEError struct {
	Class      ErrorClass
	Action     string // API action, e.g. RestartInstances
	Code       string // SAE's error code, "transport" or "" when unknown
	Message    string // SAE's message (redacted)
	HTTPStatus int    // 0 for transport errors
	RequestID  string
	// RetryAfter is the server's hint (x-acs-retry-after), 0 when absent.
	RetryAfter time.Duration
	Err        error // underlying error, redacted
}

func (e *SAEError) Error() string {
	s := fmt.Sprintf("sae %s: %s", e.Action, e.Class)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(" (http %d)", e.HTTPStatus)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *SAEError) Unwrap() error { return e.Err }

// ClassOf returns the class of err, ClassUnknown if err carries no *SAEError,
// and "" for nil.
func ClassOf(err error) ErrorClass {
	if err == nil {
		return ""
	}
	var se *SAEError
	if errors.As(err, &se) {
		return se.Class
	}
	return ClassUnknown
}

// CodeOf returns SAE's error code carried by err, or "".
func CodeOf(err error) string {
	var se *SAEError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}
