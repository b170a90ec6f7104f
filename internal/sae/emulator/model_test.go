package emulator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/sae"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

func TestOneChangeOrderPerApp(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{{
		AppID: appA, Instances: 2, RestartTime: 30 * time.Second,
		Deploys: []ForeignChangeOrder{{After: 10 * time.Second, Duration: 60 * time.Second}},
	}}})
	ids := e.instanceIDs(appA)
	c := e.client()
	own, err := e.restart(c, appA, ids[0])
	if err != nil {
		t.Fatalf("first RestartInstances() = %v", err)
	}

	steps := []struct {
		name     string
		advance  time.Duration
		wantCode string // "" = accepted
	}{
		{name: "a second restart during our change order is refused", advance: 5 * time.Second, wantCode: "Application.ChangerOrderRunning"},
		{name: "the deploy became due at 10s but waits for our lock; still refused", advance: 10 * time.Second, wantCode: "Application.ChangerOrderRunning"},
		{name: "our change order ended at 30s and the deploy took the lock", advance: 20 * time.Second, wantCode: "Application.ChangerOrderRunning"},
		{name: "the deploy ends at 90s, then the app is free", advance: 55 * time.Second, wantCode: ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.clk.Advance(s.advance)
			_, err := e.restart(c, appA, ids[1])
			if s.wantCode == "" {
				if err != nil {
					t.Fatalf("RestartInstances() = %v, want accepted", err)
				}
				return
			}
			se := serverError(t, err)
			if se.ErrorCode() != s.wantCode || se.HttpStatus() != 400 {
				t.Errorf("RestartInstances() = %d %s, want 400 %s", se.HttpStatus(), se.ErrorCode(), s.wantCode)
			}
		})
	}
	recs := e.srv.ChangeOrders(appA)
	if len(recs) != 3 || recs[0].ID != own || !recs[1].Foreign || recs[1].Type != CoDeploy ||
		!recs[1].Created.Equal(t0.Add(30*time.Second)) || !recs[1].Ended.Equal(t0.Add(90*time.Second)) || recs[1].Status != 2 {
		t.Errorf("ChangeOrders() = %+v, want ours, a foreign deploy from 30s to 90s, ours", recs)
	}
}

func TestForeignDeployIsVisibleInStatusAndLists(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{{AppID: appA, Instances: 1, Deploys: []ForeignChangeOrder{{Duration: time.Minute, Status: 3}}}}})
	e.clk.Advance(10 * time.Second)
	st := e.status(appA)
	if !st.Data.LastChangeOrderRunning || st.Data.LastChangeOrderStatus != "RUNNING" {
		t.Fatalf("status = %+v, want a running foreign change order", st.Data)
	}
	co := e.describeCO(st.Data.LastChangeOrderId)
	if co.CoTypeCode != CoDeploy || co.Status != 1 {
		t.Errorf("DescribeChangeOrder() = %+v, want a running CoDeploy", co)
	}
	e.clk.Advance(time.Minute)
	if st := e.status(appA); st.Data.LastChangeOrderRunning || st.Data.LastChangeOrderStatus != "FAIL" {
		t.Errorf("status after = %+v, want FAIL, not running", st.Data)
	}
}

func TestQuotaPerAccessKey(t *testing.T) {
	e := newEnv(t, Config{})
	call := func(c *sae.Client) error {
		req := sae.CreateDescribeApplicationStatusRequest()
		e.at(req.RoaRequest)
		req.AppId = appA
		_, err := c.DescribeApplicationStatus(req)
		return err
	}
	c := e.client()
	for i := range 60 {
		if err := call(c); err != nil {
			t.Fatalf("call %d = %v, want accepted", i+1, err)
		}
		e.clk.Advance(500 * time.Millisecond)
	}
	se := serverError(t, call(c))
	if se.HttpStatus() != 400 || se.ErrorCode() != "Throttling.User" || se.Message() != "Request was denied due to user flow control." {
		t.Errorf("61st call = %d %s %q, want 400 Throttling.User", se.HttpStatus(), se.ErrorCode(), se.Message())
	}
	// The oldest call (t0) leaves the window at t0+60s; now is t0+30s.
	if got := se.RespHeaders["X-Acs-Retry-After"]; len(got) != 1 || got[0] != "30000" {
		t.Errorf("x-acs-retry-after = %v, want [30000]", got)
	}
	stsClient, _ := sae.NewClientWithStsToken("cn-hangzhou", stsAK, stsSecret, stsToken)
	if err := call(stsClient); err != nil {
		t.Errorf("another AccessKeyId's call = %v, want its own budget", err)
	}
	e.clk.Advance(30 * time.Second)
	if err := call(c); err != nil {
		t.Errorf("call after the window slid = %v, want accepted", err)
	}
	if got := e.srv.Calls("DescribeApplicationStatus"); got != 63 {
		t.Errorf("Calls() = %d, want 63 (rejected ones included)", got)
	}
}

func TestChangeOrderFaults(t *testing.T) {
	tests := []struct {
		name          string
		kind          FaultKind
		after         time.Duration
		wantStatus    int
		wantSub       int
		wantLock      bool
		wantAppStatus string
		wantRestarts  int
		wantHealth    string
	}{
		{name: "co_fail ends Status 3 with unhealthy instances", kind: FaultCOFail, after: time.Minute, wantStatus: 3, wantAppStatus: "FAIL", wantRestarts: 1, wantHealth: "ReadinessUnhealthy"},
		{name: "co_system_fail ends Status 10 before touching instances", kind: FaultCOSystemFail, after: time.Minute, wantStatus: 10, wantAppStatus: "SYSTEM_FAIL", wantHealth: "Healthy"},
		{name: "co_stuck_substatus stays Status 1 SubStatus 1 holding the lock", kind: FaultCOStuckSubStatus, after: time.Hour, wantStatus: 1, wantSub: 1, wantLock: true, wantAppStatus: "RUNNING", wantRestarts: 1, wantHealth: "ReadinessUnhealthy"},
		{name: "co_wait_confirm stays Status 8 holding the lock", kind: FaultCOWaitConfirm, after: time.Hour, wantStatus: 8, wantLock: true, wantAppStatus: "WAIT_BATCH_CONFIRM", wantHealth: "Healthy"},
		{name: "co_wait_approval stays Status 11 holding the lock", kind: FaultCOWaitApproval, after: time.Hour, wantStatus: 11, wantLock: true, wantAppStatus: "WAIT_APPROVAL", wantHealth: "Healthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.srv.InjectFault(Fault{Kind: tt.kind, AppID: appA, Count: 1})
			ids := e.instanceIDs(appA)
			coID, err := e.restart(e.client(), appA, ids[0])
			if err != nil {
				t.Fatalf("RestartInstances() = %v", err)
			}
			e.clk.Advance(tt.after)
			co := e.describeCO(coID)
			if co.Status != tt.wantStatus || co.SubStatus != tt.wantSub {
				t.Errorf("DescribeChangeOrder() = %d/%d, want %d/%d", co.Status, co.SubStatus, tt.wantStatus, tt.wantSub)
			}
			st := e.status(appA)
			if st.Data.LastChangeOrderRunning != tt.wantLock || st.Data.LastChangeOrderStatus != tt.wantAppStatus {
				t.Errorf("status = %+v, want running=%v %s", st.Data, tt.wantLock, tt.wantAppStatus)
			}
			if tt.wantSub == 1 && st.Data.SubStatus != "RUNNING_BUT_HAS_ERROR" {
				t.Errorf("SubStatus = %q, want RUNNING_BUT_HAS_ERROR", st.Data.SubStatus)
			}
			if got := e.srv.Restarts(appA)[ids[0]]; got != tt.wantRestarts {
				t.Errorf("Restarts()[target] = %d, want %d", got, tt.wantRestarts)
			}
			if got := e.srv.Instances(appA)[0].HealthStatus; got != tt.wantHealth {
				t.Errorf("target health = %s, want %s", got, tt.wantHealth)
			}
			_, err = e.restart(e.client(), appA, ids[1])
			if tt.wantLock {
				if se := serverError(t, err); se.ErrorCode() != "Application.ChangerOrderRunning" {
					t.Errorf("restart while held = %s, want Application.ChangerOrderRunning", se.ErrorCode())
				}
				// Abort releases the lock.
				req := sae.CreateAbortChangeOrderRequest()
				e.at(req.RoaRequest)
				req.ChangeOrderId = coID
				if _, err := e.client().AbortChangeOrder(req); err != nil {
					t.Fatalf("AbortChangeOrder() = %v", err)
				}
				if got := e.describeCO(coID).Status; got != 6 {
					t.Errorf("status after abort = %d, want 6", got)
				}
				_, err = e.restart(e.client(), appA, ids[1])
			}
			if err != nil {
				t.Errorf("restart after the change order = %v, want accepted (count 1 fault used up)", err)
			}
		})
	}
}

func TestAbortChangeOrder(t *testing.T) {
	tests := []struct {
		name         string
		abortAt      time.Duration
		wantRestarts int
		wantCode     string
	}{
		{name: "before the batch touches a pod: nothing restarts", abortAt: 3 * time.Second, wantRestarts: 0},
		{name: "mid batch: the started pod restart finishes", abortAt: 20 * time.Second, wantRestarts: 1},
		{name: "after success: InvalidParameter.WithMessage", abortAt: 2 * time.Minute, wantRestarts: 1, wantCode: "InvalidParameter.WithMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			ids := e.instanceIDs(appA)
			coID, err := e.restart(e.client(), appA, ids[0])
			if err != nil {
				t.Fatalf("RestartInstances() = %v", err)
			}
			e.clk.Advance(tt.abortAt)
			req := sae.CreateAbortChangeOrderRequest()
			e.at(req.RoaRequest)
			req.ChangeOrderId = coID
			_, err = e.client().AbortChangeOrder(req)
			if tt.wantCode != "" {
				if se := serverError(t, err); se.ErrorCode() != tt.wantCode {
					t.Errorf("AbortChangeOrder() = %s, want %s", se.ErrorCode(), tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("AbortChangeOrder() = %v", err)
			}
			if st := e.status(appA); st.Data.LastChangeOrderRunning || st.Data.LastChangeOrderStatus != "ABORT" {
				t.Errorf("status = %+v, want ABORT, lock free", st.Data)
			}
			e.clk.Advance(2 * time.Minute)
			if got := e.srv.Restarts(appA)[ids[0]]; got != tt.wantRestarts {
				t.Errorf("Restarts() = %d, want %d", got, tt.wantRestarts)
			}
			for _, in := range e.srv.Instances(appA) {
				if in.ContainerStatus != "Running" || in.HealthStatus != "Healthy" {
					t.Errorf("instance after abort = %+v, want Running Healthy", in)
				}
			}
			recs := e.srv.ChangeOrders(appA)
			if len(recs) != 1 || !recs[0].Aborted || recs[0].Status != 6 {
				t.Errorf("ChangeOrders() = %+v, want one aborted", recs)
			}
		})
	}
}

func TestBusinessErrorsAreDocumented(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{
		{AppID: appA, Instances: 1},
		{AppID: appB, NotDeployed: true},
	}})
	tests := []struct {
		name       string
		path       string
		method     string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "restart of an unknown app", method: "PUT", path: "/pop/v1/sam/app/restartInstances?AppId=nope&InstanceIds=x", wantStatus: 400, wantCode: "InvalidApplication.NotFound", wantMsg: "The current application does not exist."},
		{name: "restart without AppId", method: "PUT", path: "/pop/v1/sam/app/restartInstances?InstanceIds=x", wantStatus: 400, wantCode: "InvalidParameter.NotEmpty", wantMsg: "You must specify the parameter AppId."},
		{name: "restart of an instance of another app", method: "PUT", path: "/pop/v1/sam/app/restartInstances?AppId=" + appA + "&InstanceIds=foreign-pod", wantStatus: 400, wantCode: "InvalidParameter.Obviously", wantMsg: "The specified parameter is invalid {InstanceIds}."},
		{name: "restart of a never deployed app", method: "PUT", path: "/pop/v1/sam/app/restartInstances?AppId=" + appB + "&InstanceIds=x", wantStatus: 400, wantCode: "Application.NotDeployYet"},
		{name: "status of an unknown app", method: "GET", path: "/pop/v1/sam/app/describeApplicationStatus?AppId=nope", wantStatus: 400, wantCode: "InvalidApplication.NotFound"},
		{name: "change orders of an unknown app", method: "GET", path: "/pop/v1/sam/changeorder/ListChangeOrders?AppId=nope", wantStatus: 404, wantCode: "InvalidAppId.NotFound"},
		{name: "an unknown change order", method: "GET", path: "/pop/v1/sam/changeorder/DescribeChangeOrder?ChangeOrderId=nope", wantStatus: 400, wantCode: "InvalidChangeOrder.NotFound"},
		{name: "instances without GroupId", method: "GET", path: "/pop/v1/sam/app/describeApplicationInstances?AppId=" + appA, wantStatus: 400, wantCode: "InvalidParameter.NotEmpty", wantMsg: "You must specify the parameter GroupId."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := e.raw(tt.method, tt.path, nil)
			m := decodeMap(t, body)
			if status != tt.wantStatus || m["Code"] != tt.wantCode || m["Success"] != false {
				t.Errorf("answer = %d %s, want %d Code %s Success false", status, body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantMsg != "" && m["Message"] != tt.wantMsg {
				t.Errorf("Message = %v, want %q", m["Message"], tt.wantMsg)
			}
		})
	}
}

func TestBusinessErrorModes(t *testing.T) {
	tests := []struct {
		name          string
		codeIn        ErrorCodeMode
		status        BusinessStatusMode
		wantHTTP      int
		wantCode      string
		wantErrorCode string
	}{
		{name: "id in Code, HTTP 400 (default)", codeIn: CodeInCode, status: HTTP4xx, wantHTTP: 400, wantCode: "Application.ChangerOrderRunning"},
		{name: "Code 400 and id in ErrorCode, HTTP 400", codeIn: CodeInErrorCode, status: HTTP4xx, wantHTTP: 400, wantCode: "400", wantErrorCode: "Application.ChangerOrderRunning"},
		{name: "id in Code, HTTP 200 with Success false", codeIn: CodeInCode, status: HTTP200, wantHTTP: 200, wantCode: "Application.ChangerOrderRunning"},
		{name: "Code 400 and id in ErrorCode, HTTP 200", codeIn: CodeInErrorCode, status: HTTP200, wantHTTP: 200, wantCode: "400", wantErrorCode: "Application.ChangerOrderRunning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{ErrorCodeIn: tt.codeIn, BusinessErrorStatus: tt.status})
			ids := e.instanceIDs(appA)
			if _, err := e.restart(e.client(), appA, ids[0]); err != nil {
				t.Fatalf("first restart = %v", err)
			}
			req := sae.CreateRestartInstancesRequest()
			e.at(req.RoaRequest)
			req.AppId, req.InstanceIds = appA, ids[1]
			resp, err := e.client().RestartInstances(req)
			if tt.wantHTTP == 200 {
				if err != nil || resp.Success || resp.Code != tt.wantCode || resp.ErrorCode != tt.wantErrorCode {
					t.Errorf("RestartInstances() = %+v, %v; want Success false Code %q ErrorCode %q", resp, err, tt.wantCode, tt.wantErrorCode)
				}
			} else {
				se := serverError(t, err)
				if se.HttpStatus() != tt.wantHTTP || se.ErrorCode() != tt.wantCode {
					t.Errorf("ServerError = %d %s, want %d %s", se.HttpStatus(), se.ErrorCode(), tt.wantHTTP, tt.wantCode)
				}
			}
			m := decodeMap(t, []byte(resp.GetHttpContentString()))
			if ec, _ := m["ErrorCode"].(string); ec != tt.wantErrorCode || m["Success"] != false || m["TraceId"] == "" {
				t.Errorf("body = %s, want ErrorCode %q, Success false, a TraceId", resp.GetHttpContentString(), tt.wantErrorCode)
			}
			// Gateway errors keep the POP shape whatever the modes.
			e.srv.InjectFault(Fault{Kind: FaultCode, Code: "Throttling.User", Count: 1})
			status, _, body := e.raw(http.MethodGet, "/pop/v1/sam/app/describeApplicationStatus?AppId="+appA, nil)
			if pm := decodeMap(t, body); status != 400 || pm["Code"] != "Throttling.User" || pm["Success"] != nil {
				t.Errorf("injected Throttling.User = %d %s, want a 400 POP body", status, body)
			}
		})
	}
}

func TestConcurrentSDKClients(t *testing.T) {
	var apps []AppSpec
	for i := range 8 {
		apps = append(apps, AppSpec{AppID: fmt.Sprintf("app-%d", i), Instances: 3})
	}
	e := newEnv(t, Config{Apps: apps, QuotaPerMinute: -1})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appID := fmt.Sprintf("app-%d", i)
			c, err := sae.NewClientWithAccessKey("cn-hangzhou", testAK, testSecret) // one client per goroutine (facts §3.4)
			if err != nil {
				errs <- err
				return
			}
			ids := e.instanceIDs(appID)
			for j := range 5 {
				req := sae.CreateDescribeApplicationStatusRequest()
				e.at(req.RoaRequest)
				req.AppId = appID
				if _, err := c.DescribeApplicationStatus(req); err != nil {
					errs <- fmt.Errorf("%s status %d: %w", appID, j, err)
				}
				// Every goroutine also races for the same app's lock.
				if _, err := e.restart(c, "app-0", e.instanceIDs("app-0")[0]); err != nil && !strings.Contains(err.Error(), "ChangerOrderRunning") {
					errs <- fmt.Errorf("restart app-0: %w", err)
				}
			}
			if _, err := e.restart(c, appID, ids[1]); err != nil && appID != "app-0" {
				errs <- fmt.Errorf("restart %s: %w", appID, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(e.srv.ChangeOrders("app-0")); got != 1 {
		t.Errorf("app-0 change orders = %d, want exactly 1 (the lock held under contention)", got)
	}
	if got := e.srv.Calls("DescribeApplicationStatus"); got != 40 {
		t.Errorf("Calls(DescribeApplicationStatus) = %d, want 40", got)
	}
	if got := e.srv.Calls("RestartInstances"); got != 48 {
		t.Errorf("Calls(RestartInstances) = %d, want 48", got)
	}
}

func TestScaledClockRunsRestartsFaster(t *testing.T) {
	clk := clock.NewScaled(t0, 1000)
	srv, err := New(Config{Clock: clk, AccessKeys: map[string]string{testAK: testSecret},
		Apps: []AppSpec{{AppID: appA, Instances: 1, RestartTime: 60 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	base, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(base, "http://"), ":")
	e := &env{t: t, srv: srv, host: host, port: port, base: base}
	start := time.Now()
	coID, err := e.restart(e.client(), appA, e.instanceIDs(appA)[0])
	if err != nil {
		t.Fatalf("RestartInstances() = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Wait the way the daemon does: on the shared clock, 61 emulated seconds (61 ms real).
	if err := clk.Sleep(ctx, 61*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := e.describeCO(coID).Status; got != 2 {
		t.Errorf("status after 61 emulated seconds = %d, want 2", got)
	}
	if real := time.Since(start); real > 5*time.Second {
		t.Errorf("a 60 s restart took %v real time at factor 1000", real)
	}
}

func TestRestartJitterVariesBatchTimes(t *testing.T) {
	tests := []struct {
		name     string
		jitter   float64
		wantSame bool
	}{
		{name: "without jitter every restart takes restart_time", jitter: 0, wantSame: true},
		{name: "with jitter restarts vary within the bound", jitter: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const d = 60 * time.Second
			e := newEnv(t, Config{Apps: []AppSpec{{AppID: appA, Instances: 1, RestartTime: d, RestartJitter: tt.jitter}}})
			seen := map[time.Duration]bool{}
			for i := 0; i < 8; i++ {
				if _, err := e.restart(e.client(), appA, e.instanceIDs(appA)[0]); err != nil {
					t.Fatalf("restart %d: %v", i, err)
				}
				e.clk.Advance(2 * d) // past the longest possible restart
				cos := e.srv.ChangeOrders(appA)
				co := cos[len(cos)-1]
				if co.Status != 2 {
					t.Fatalf("restart %d: status %d, want 2", i, co.Status)
				}
				took := co.Ended.Sub(co.Created)
				lo := time.Duration(float64(d) * (1 - tt.jitter))
				hi := time.Duration(float64(d) * (1 + tt.jitter))
				if took < lo || took > hi {
					t.Errorf("restart %d took %v, want within [%v, %v]", i, took, lo, hi)
				}
				seen[took] = true
			}
			if same := len(seen) == 1; same != tt.wantSame {
				t.Errorf("distinct restart times = %d, want all the same: %v", len(seen), tt.wantSame)
			}
		})
	}
}
