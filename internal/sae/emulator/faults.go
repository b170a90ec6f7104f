package emulator

import (
	"errors"
	"fmt"
	"time"
)

// FaultKind names an injectable fault.
type FaultKind string

// Fault kinds. Request faults shape one answer; change-order faults (co_*)
// shape the outcome of the app's next restart change order(s).
const (
	// FaultCode answers Fault.Code with its documented HTTP status and message
	// (business codes in the business shape of the current modes; POP codes
	// such as Throttling.User in the POP shape).
	FaultCode FaultKind = "code"
	// FaultHTTP5xx answers 503 ServiceUnavailable (or 500 InternalError with HTTPStatus 500) in the POP shape.
	FaultHTTP5xx FaultKind = "http5xx"
	// FaultHTML502 answers 502 with an HTML body.
	FaultHTML502 FaultKind = "html502"
	// FaultLatency delays the answer by Latency (real time), then answers normally.
	FaultLatency FaultKind = "latency"
	// FaultNumericCode answers 400 with a numeric "Code":400 (the SDK panics on it).
	FaultNumericCode FaultKind = "numeric_code"
	// FaultTruncatedJSON carries the call out and answers 200 with the first half of the JSON body.
	FaultTruncatedJSON FaultKind = "truncated_json"
	// FaultObjectForArray carries the call out and answers 200 with the first array under Data replaced by an object.
	FaultObjectForArray FaultKind = "object_for_array"
	// FaultAcceptThen5xx carries the call out (a restart creates its change order) and answers 503.
	FaultAcceptThen5xx FaultKind = "accept_then_5xx"
	// FaultAcceptThenDrop carries the call out and closes the connection without an answer.
	FaultAcceptThenDrop FaultKind = "accept_then_drop"
	// FaultCOFail: the restart change order's first batch fails; it ends Status 3
	// and the batch's instances come back ReadinessUnhealthy.
	FaultCOFail FaultKind = "co_fail"
	// FaultCOSystemFail: the change order ends Status 10 before touching any instance.
	FaultCOSystemFail FaultKind = "co_system_fail"
	// FaultCOStuckSubStatus: the first batch fails and the change order stays
	// Status 1 with SubStatus 1 forever (until aborted), holding the lock.
	FaultCOStuckSubStatus FaultKind = "co_stuck_substatus"
	// FaultCOWaitConfirm: the change order stops in Status 8 before its first batch, until aborted.
	FaultCOWaitConfirm FaultKind = "co_wait_confirm"
	// FaultCOWaitApproval: the change order is created in Status 11 and stays there until aborted.
	FaultCOWaitApproval FaultKind = "co_wait_approval"
)

func (k FaultKind) isCO() bool {
	switch k {
	case FaultCOFail, FaultCOSystemFail, FaultCOStuckSubStatus, FaultCOWaitConfirm, FaultCOWaitApproval:
		return true
	}
	return false
}

func (k FaultKind) known() bool {
	switch k {
	case FaultCode, FaultHTTP5xx, FaultHTML502, FaultLatency, FaultNumericCode, FaultTruncatedJSON,
		FaultObjectForArray, FaultAcceptThen5xx, FaultAcceptThenDrop:
		return true
	}
	return k.isCO()
}

// Fault is an injected misbehaviour. It affects calls whose action matches
// Action ("" = any; for co_* kinds: the action that creates the change
// order) and whose app matches AppID ("" = any; the app of AppId, or of the
// ChangeOrderId). It is active from After until Until (emulated time since
// the emulator started; Until 0 = no end) for Count calls (0 = forever).
type Fault struct {
	Kind       FaultKind     `yaml:"kind"`
	Action     string        `yaml:"action"`
	AppID      string        `yaml:"app_id"`
	Code       string        `yaml:"code"`        // FaultCode: the code to answer; FaultNumericCode: the ErrorCode beside "Code":400
	HTTPStatus int           `yaml:"http_status"` // FaultCode: overrides the documented status; FaultHTTP5xx: 500 or 503 (default)
	Latency    time.Duration `yaml:"latency"`     // FaultLatency: real-time delay
	Count      int           `yaml:"count"`
	After      time.Duration `yaml:"after"`
	Until      time.Duration `yaml:"until"`
}

func (f Fault) validate() error {
	switch {
	case !f.Kind.known():
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	case f.Kind == FaultCode && f.Code == "":
		return errors.New("fault kind code needs a code")
	case f.Kind == FaultLatency && f.Latency <= 0:
		return errors.New("fault kind latency needs a positive latency")
	case f.Kind == FaultHTTP5xx && f.HTTPStatus != 0 && (f.HTTPStatus < 500 || f.HTTPStatus > 599):
		return fmt.Errorf("fault kind http5xx needs a 5xx http_status, not %d", f.HTTPStatus)
	case f.Count < 0:
		return errors.New("fault count must not be negative")
	case f.After < 0 || f.Until < 0:
		return errors.New("fault after/until must not be negative")
	case f.Until != 0 && f.Until <= f.After:
		return errors.New("fault until must be after after")
	}
	return nil
}

type faultState struct {
	Fault
	used int
}

func newFaultState(f Fault) *faultState { return &faultState{Fault: f} }

// matchLocked reports whether the fault applies now to a call of action on appID.
func (f *faultState) matchLocked(action, appID string, since time.Duration) bool {
	if f.Count > 0 && f.used >= f.Count {
		return false
	}
	if f.Action != "" && f.Action != action {
		return false
	}
	if f.AppID != "" && f.AppID != appID {
		return false
	}
	if since < f.After || (f.Until != 0 && since >= f.Until) {
		return false
	}
	return true
}

// requestFaultsLocked consumes the faults that apply to this call: the sum
// of the latency faults and the first other request fault.
func (s *Server) requestFaultsLocked(action, appID string, now time.Time) (latency time.Duration, f *Fault) {
	since := now.Sub(s.start)
	for _, fs := range s.faults {
		if fs.Kind.isCO() || !fs.matchLocked(action, appID, since) {
			continue
		}
		if fs.Kind == FaultLatency {
			fs.used++
			latency += fs.Latency
			continue
		}
		if f == nil {
			fs.used++
			cp := fs.Fault
			f = &cp
		}
	}
	return latency, f
}

// coFaultLocked consumes the first change-order fault for a new restart change order.
func (s *Server) coFaultLocked(action, appID string, now time.Time) FaultKind {
	since := now.Sub(s.start)
	for _, fs := range s.faults {
		if fs.Kind.isCO() && fs.matchLocked(action, appID, since) {
			fs.used++
			return fs.Kind
		}
	}
	return ""
}
