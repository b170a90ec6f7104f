package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/sae"
)

func TestRequestFaults(t *testing.T) {
	restartPath := func(e *env) string {
		return "/pop/v1/sam/app/restartInstances?AppId=" + appA + "&InstanceIds=" + e.instanceIDs(appA)[0]
	}
	groupsPath := func(*env) string { return "/pop/v1/sam/app/describeApplicationGroups?AppId=" + appA }
	tests := []struct {
		name       string
		fault      Fault
		method     string
		path       func(*env) string
		wantStatus int
		wantCode   any // decoded "Code"; nil when the body is not JSON
		wantBody   string
		wantCOs    int // change orders created by the call
	}{
		{name: "code System.Upgrading answers 400 in the business shape", fault: Fault{Kind: FaultCode, Code: "System.Upgrading"}, method: "PUT", path: restartPath, wantStatus: 400, wantCode: "System.Upgrading", wantBody: "The system is being upgraded. Please try again later."},
		{name: "code Application.InvalidStatus", fault: Fault{Kind: FaultCode, Code: "Application.InvalidStatus"}, method: "PUT", path: restartPath, wantStatus: 400, wantCode: "Application.InvalidStatus"},
		{name: "code InvalidParameter.Obviously", fault: Fault{Kind: FaultCode, Code: "InvalidParameter.Obviously"}, method: "PUT", path: restartPath, wantStatus: 400, wantCode: "InvalidParameter.Obviously", wantBody: "{InstanceIds}"},
		{name: "code user.indebt", fault: Fault{Kind: FaultCode, Code: "user.indebt"}, method: "PUT", path: restartPath, wantStatus: 400, wantCode: "user.indebt", wantBody: "outstanding payment"},
		{name: "code Throttling.User answers in the POP shape", fault: Fault{Kind: FaultCode, Code: "Throttling.User"}, method: "GET", path: groupsPath, wantStatus: 400, wantCode: "Throttling.User", wantBody: `"Recommend"`},
		{name: "http5xx defaults to 503 ServiceUnavailable", fault: Fault{Kind: FaultHTTP5xx}, method: "GET", path: groupsPath, wantStatus: 503, wantCode: "ServiceUnavailable"},
		{name: "http5xx 500 is InternalError", fault: Fault{Kind: FaultHTTP5xx, HTTPStatus: 500}, method: "GET", path: groupsPath, wantStatus: 500, wantCode: "InternalError"},
		{name: "html502 answers a non-JSON page", fault: Fault{Kind: FaultHTML502}, method: "GET", path: groupsPath, wantStatus: 502, wantBody: "<title>502 Bad Gateway</title>"},
		{name: "numeric_code answers a numeric Code", fault: Fault{Kind: FaultNumericCode}, method: "GET", path: groupsPath, wantStatus: 400, wantCode: float64(400), wantBody: `"Code":400`},
		{name: "truncated_json cuts a 200 body", fault: Fault{Kind: FaultTruncatedJSON}, method: "GET", path: groupsPath, wantStatus: 200, wantBody: `{"Code":"200"`},
		{name: "object_for_array turns the groups array into an object", fault: Fault{Kind: FaultObjectForArray}, method: "GET", path: groupsPath, wantStatus: 200, wantCode: "200", wantBody: `"Data":{"0":{`},
		{name: "object_for_array turns the nested Instances array into an object", fault: Fault{Kind: FaultObjectForArray}, method: "GET",
			path: func(*env) string {
				return "/pop/v1/sam/app/describeApplicationInstances?AppId=" + appA + "&GroupId=" + groupID(appA, 0)
			}, wantStatus: 200, wantCode: "200", wantBody: `"Instances":{"0":{`},
		{name: "accept_then_5xx creates the change order and answers 503", fault: Fault{Kind: FaultAcceptThen5xx, Action: "RestartInstances"}, method: "PUT", path: restartPath, wantStatus: 503, wantCode: "ServiceUnavailable", wantCOs: 1},
		{name: "a fault for another action does not apply", fault: Fault{Kind: FaultHTTP5xx, Action: "RestartInstances"}, method: "GET", path: groupsPath, wantStatus: 200, wantCode: "200"},
		{name: "a fault for another app does not apply", fault: Fault{Kind: FaultHTTP5xx, AppID: appB}, method: "GET", path: groupsPath, wantStatus: 200, wantCode: "200"},
		{name: "a fault not yet active does not apply", fault: Fault{Kind: FaultHTTP5xx, After: time.Minute}, method: "GET", path: groupsPath, wantStatus: 200, wantCode: "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			tt.fault.Count = 1
			e.srv.InjectFault(tt.fault)
			status, _, body := e.raw(tt.method, tt.path(e), nil)
			if status != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("answer = %d %s, want %d containing %q", status, body, tt.wantStatus, tt.wantBody)
			}
			var m map[string]any
			jsonErr := json.Unmarshal(body, &m)
			switch {
			case tt.wantCode == nil && jsonErr == nil:
				t.Errorf("body %s is JSON, want a broken or non-JSON body", body)
			case tt.wantCode != nil && (jsonErr != nil || m["Code"] != tt.wantCode):
				t.Errorf("Code = %v (%v), want %v", m["Code"], jsonErr, tt.wantCode)
			}
			if got := len(e.srv.ChangeOrders(appA)); got != tt.wantCOs {
				t.Errorf("change orders = %d, want %d", got, tt.wantCOs)
			}
			// Count 1: the next call is answered normally.
			if status, _, _ := e.raw(http.MethodGet, groupsPath(e), nil); status != 200 {
				t.Errorf("next call = %d, want 200 after the fault was used up", status)
			}
		})
	}
}

func TestFaultsThroughTheSDK(t *testing.T) {
	t.Run("object_for_array and truncated_json fail decoding, not panic", func(t *testing.T) {
		for _, kind := range []FaultKind{FaultObjectForArray, FaultTruncatedJSON} {
			e := newEnv(t, Config{})
			e.srv.InjectFault(Fault{Kind: kind, Count: 1})
			req := sae.CreateDescribeApplicationGroupsRequest()
			e.at(req.RoaRequest)
			req.AppId = appA
			if _, err := e.client().DescribeApplicationGroups(req); err == nil || !strings.Contains(err.Error(), "JsonUnmarshalError") {
				t.Errorf("%s: DescribeApplicationGroups() = %v, want SDK.JsonUnmarshalError", kind, err)
			}
		}
	})
	t.Run("html502 is a ServerError without a code", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.srv.InjectFault(Fault{Kind: FaultHTML502, Count: 1})
		_, err := e.restart(e.client(), appA, e.instanceIDs(appA)[0])
		se := serverError(t, err)
		if se.HttpStatus() != 502 || se.ErrorCode() != "" || !strings.Contains(se.Message(), "Bad Gateway") {
			t.Errorf("ServerError = %d %q %q", se.HttpStatus(), se.ErrorCode(), se.Message())
		}
	})
	t.Run("accept_then_drop carries the restart out and closes the connection", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.srv.InjectFault(Fault{Kind: FaultAcceptThenDrop, Action: "RestartInstances", Count: 1})
		id := e.instanceIDs(appA)[0]
		if _, err := e.restart(e.client(), appA, id); err == nil {
			t.Fatal("RestartInstances() = nil error, want a transport error")
		}
		recs := e.srv.ChangeOrders(appA)
		if len(recs) != 1 || recs[0].Targets[0] != id {
			t.Errorf("ChangeOrders() = %+v, want the restart carried out", recs)
		}
		if st := e.status(appA); st.Data.LastChangeOrderId != recs[0].ID {
			t.Errorf("LastChangeOrderId = %s, want %s (how a client resolves the ambiguity)", st.Data.LastChangeOrderId, recs[0].ID)
		}
	})
	t.Run("latency delays the answer in real time", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.srv.InjectFault(Fault{Kind: FaultLatency, Latency: 50 * time.Millisecond, Count: 1})
		start := time.Now()
		e.status(appA)
		if got := time.Since(start); got < 50*time.Millisecond {
			t.Errorf("call took %v, want >= 50ms", got)
		}
	})
	t.Run("a fault window in emulated time", func(t *testing.T) {
		e := newEnv(t, Config{})
		e.srv.InjectFault(Fault{Kind: FaultCode, Code: "System.Upgrading", After: time.Minute, Until: 2 * time.Minute})
		var got []int
		for range 3 {
			status, _, _ := e.raw(http.MethodGet, "/pop/v1/sam/app/describeApplicationStatus?AppId="+appA, nil)
			got = append(got, status)
			e.clk.Advance(time.Minute)
		}
		if got[0] != 200 || got[1] != 400 || got[2] != 200 {
			t.Errorf("statuses at 0, 1, 2 min = %v, want [200 400 200]", got)
		}
	})
}

func TestInvalidFaultsAreRejected(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		want  string
	}{
		{name: "unknown kind", fault: Fault{Kind: "explode"}, want: `unknown fault kind "explode"`},
		{name: "code without a code", fault: Fault{Kind: FaultCode}, want: "fault kind code needs a code"},
		{name: "latency without a latency", fault: Fault{Kind: FaultLatency}, want: "fault kind latency needs a positive latency"},
		{name: "http5xx with a 4xx status", fault: Fault{Kind: FaultHTTP5xx, HTTPStatus: 404}, want: "fault kind http5xx needs a 5xx http_status, not 404"},
		{name: "until before after", fault: Fault{Kind: FaultHTML502, After: time.Minute, Until: time.Second}, want: "fault until must be after after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Apps: []AppSpec{{AppID: "a", Faults: []Fault{tt.fault}}}})
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("New() = %v, want an error ending %q", err, tt.want)
			}
		})
	}
}
