package sae

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// testSTSToken looks like a real STS token: it must never survive Redact.
const testSTSToken = "CAIS8gF1q6Ft5B2yfSjIr5bSEvn3vKdv0qWtbkjzkWA4YvZ+mK3vqzz2IHhMeXVhAu0etfo2nGtX6/4elqN4T55IQ1Dcb8x5tp2xKGO1k3mCTvLtI/P5gP3cvD+aKuNtDU4gnHuSjBOrYJLaGlP8CTxfQ6vzbJeL3Q8u2rqATpH8jUUVYP3XVC7xQVDfK4lAotsEtn+3gDBGnzLlEHw3Y8c5bpKdXjxCF4jWMWAmWNIFZhSSE5VbyKgTLF8S+PhLjlbwjSL4gBGnSSDmpNh8AHs7QO2a2yvFQMgsM9KSH1CoLY7oT1bOMNrn8g5Il2V1P3U0a4B3ncOTE"

// sdsMessage is SignatureDoesNotMatch's message, echoing the server's string
// to sign with the STS token in it (facts §1.3).
var sdsMessage = "Specified signature is not matched with our calculation. server string to sign is:PUT\napplication/json\n1B2M2Y8AsgTpgAmY7PhCfg==\napplication/octet-stream\nTue, 01 Dec 2026 18:28:06 GMT\nx-acs-action:RestartInstances\nx-acs-credentials-provider:static_sts\nx-acs-security-token:" + testSTSToken + "\nx-acs-signature-method:HMAC-SHA1\nx-acs-signature-version:1.0\nx-acs-version:2019-05-06\n/pop/v1/sam/app/restartInstances?AppId=app-1&InstanceIds=a,b"

func jsonQuote(s string) string { return fmt.Sprintf("%q", s) }

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		action     string
		status     int
		body       string
		transport  error
		wantNil    bool
		wantClass  jobs.ErrorClass
		wantCode   string
		wantInMsg  string
		wantStatus int
	}{
		{name: "success envelope is no error", action: "DescribeApplicationStatus", status: 200,
			body: `{"RequestId":"r1","Message":"success","Code":"200","Success":true,"Data":{"CurrentStatus":"RUNNING"}}`, wantNil: true},
		{name: "success with documented ErrorCode placeholder", action: "RestartInstances", status: 200,
			body: `{"RequestId":"r","Message":"success","ErrorCode":"空","Code":"200","Success":true,"Data":{"ChangeOrderId":"co"}}`, wantNil: true},
		{name: "success with numeric Code 200", action: "DescribeChangeOrder", status: 200,
			body: `{"Code":200,"Success":true,"Data":{}}`, wantNil: true},
		{name: "success without Success field", action: "ListChangeOrders", status: 200,
			body: `{"Code":"200","Data":{}}`, wantNil: true},
		{name: "lock with the code in Code", action: "RestartInstances", status: 400,
			body:      `{"RequestId":"r2","Code":"Application.ChangerOrderRunning","Message":"An application change process is in progress. Please try again later.","Success":false}`,
			wantClass: jobs.ClassLock, wantCode: "Application.ChangerOrderRunning", wantInMsg: "in progress", wantStatus: 400},
		{name: "lock with the code in ErrorCode and Code 400", action: "RestartInstances", status: 400,
			body:      `{"RequestId":"r","TraceId":"t","Code":"400","ErrorCode":"Application.ChangerOrderRunning","Message":"An application change process is in progress.","Success":false,"Data":null}`,
			wantClass: jobs.ClassLock, wantCode: "Application.ChangerOrderRunning"},
		{name: "lock as HTTP 200 with Success false", action: "RestartInstances", status: 200,
			body:      `{"Code":"400","ErrorCode":"Application.ChangerOrderRunning","Message":"busy","Success":false}`,
			wantClass: jobs.ClassLock, wantCode: "Application.ChangerOrderRunning", wantStatus: 200},
		{name: "200 with Success false and no code is unknown", action: "DescribeApplicationStatus", status: 200,
			body: `{"Code":"200","Message":"something odd","Success":false}`, wantClass: jobs.ClassUnknown},
		{name: "200 with Success as string false", action: "DescribeApplicationStatus", status: 200,
			body: `{"ErrorCode":"System.Upgrading","Success":"false"}`, wantClass: jobs.ClassRetryable, wantCode: "System.Upgrading"},
		{name: "numeric Code 400 with the code only in the message", action: "RestartInstances", status: 400,
			body:      `{"Code":400,"Message":"Application.NotDeployYet","Success":false}`,
			wantClass: jobs.ClassNotDeployed, wantCode: "Application.NotDeployYet"},
		{name: "numeric Code with no code anywhere is unknown", action: "DescribeApplicationStatus", status: 400,
			body: `{"Code":400,"Message":"bad","RequestId":12}`, wantClass: jobs.ClassUnknown, wantCode: ""},
		{name: "system upgrading is retryable even for a submit", action: "RestartInstances", status: 400,
			body: `{"Code":"System.Upgrading","Message":"The system is being upgraded."}`, wantClass: jobs.ClassRetryable},
		{name: "invalid status is retryable", action: "RestartInstances", status: 400,
			body: `{"ErrorCode":"Application.InvalidStatus","Code":"400"}`, wantClass: jobs.ClassRetryable},
		{name: "POP throttling", action: "DescribeChangeOrder", status: 400,
			body:      `{"RequestId":"9736ED45","Message":"Request was denied due to user flow control.","Recommend":"https://next.api.aliyun.com/troubleshoot?q=Throttling.User&product=sae","HostId":"sae.cn-hangzhou.aliyuncs.com","Code":"Throttling.User"}`,
			wantClass: jobs.ClassRetryable, wantCode: "Throttling.User"},
		{name: "rejected throttling on a submit is retryable", action: "RestartInstances", status: 400,
			body: `{"Code":"Rejected.Throttling"}`, wantClass: jobs.ClassRetryable},
		{name: "an unlisted throttling code is retryable", action: "ListApplications", status: 400,
			body: `{"Code":"Throttling.Concurrent"}`, wantClass: jobs.ClassRetryable, wantCode: "Throttling.Concurrent"},
		{name: "service unavailable on a read is retryable", action: "DescribeChangeOrder", status: 503,
			body: `{"Code":"ServiceUnavailable","Message":"The request has failed due to a temporary failure of the server."}`, wantClass: jobs.ClassRetryable},
		{name: "service unavailable on a submit is ambiguous", action: "RestartInstances", status: 503,
			body: `{"Code":"ServiceUnavailable"}`, wantClass: jobs.ClassAmbiguous},
		{name: "internal error on a submit is ambiguous", action: "RestartInstances", status: 500,
			body: `{"Code":"InternalError"}`, wantClass: jobs.ClassAmbiguous},
		{name: "HTML 502 on a read is retryable", action: "DescribeApplicationInstances", status: 502,
			body: "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", wantClass: jobs.ClassRetryable, wantInMsg: "non-JSON"},
		{name: "HTML 502 on a submit is ambiguous", action: "RestartInstances", status: 502,
			body: "<html>502 Bad Gateway</html>", wantClass: jobs.ClassAmbiguous},
		{name: "empty 500 on an abort is ambiguous", action: "AbortChangeOrder", status: 500, body: "", wantClass: jobs.ClassAmbiguous, wantInMsg: "empty"},
		{name: "empty 404 is unknown", action: "DescribeChangeOrder", status: 404, body: "", wantClass: jobs.ClassUnknown},
		{name: "truncated JSON 200 on a read is retryable", action: "DescribeChangeOrder", status: 200,
			body: `{"RequestId":"r","Code":"200","Success":true,"Data":{"Status":`, wantClass: jobs.ClassRetryable, wantCode: CodeMalformed},
		{name: "truncated JSON 200 on a submit is ambiguous", action: "RestartInstances", status: 200,
			body: `{"RequestId":"r","Code":"200","Success":tr`, wantClass: jobs.ClassAmbiguous, wantCode: CodeMalformed},
		{name: "empty 200 on a read is retryable", action: "ListChangeOrders", status: 200, body: "", wantClass: jobs.ClassRetryable, wantCode: CodeMalformed},
		{name: "JSON array body 200 on a submit is ambiguous", action: "RestartInstances", status: 200, body: `[1,2]`, wantClass: jobs.ClassAmbiguous},
		{name: "truncated JSON 400 is unknown", action: "DescribeChangeOrder", status: 400, body: `{"Code":"Appl`, wantClass: jobs.ClassUnknown},
		{name: "not deployed", action: "RestartInstances", status: 400,
			body: `{"Code":"Application.NotDeployYet","Message":"The application has not been deployed."}`, wantClass: jobs.ClassNotDeployed},
		{name: "invalid parameter obviously on a restart is stale instances", action: "RestartInstances", status: 400,
			body: `{"Code":"InvalidParameter.Obviously","Message":"The specified parameter is invalid {InstanceIds}."}`, wantClass: jobs.ClassStaleInstances},
		{name: "invalid parameter obviously elsewhere is fatal", action: "DescribeChangeOrder", status: 400,
			body: `{"Code":"InvalidParameter.Obviously"}`, wantClass: jobs.ClassFatal},
		{name: "arrears end the account", action: "RestartInstances", status: 400,
			body: `{"Code":"user.indebt","Message":"The user has an outstanding payment."}`, wantClass: jobs.ClassAccount},
		{name: "compute quota ends the account", action: "RestartInstances", status: 400,
			body: `{"ErrorCode":"NoComputeResourceQuota.Exceed","Code":"400"}`, wantClass: jobs.ClassAccount},
		{name: "user compute quota ends the account", action: "RestartInstances", status: 400,
			body: `{"ErrorCode":"NoComputeResourceQuota.User.Exceed"}`, wantClass: jobs.ClassAccount},
		{name: "per-app compute quota is fatal for the app", action: "RestartInstances", status: 400,
			body: `{"ErrorCode":"NoComputeResourceQuota.App.Exceed"}`, wantClass: jobs.ClassFatal},
		{name: "unknown access key", action: "ListApplications", status: 404,
			body: `{"Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found."}`, wantClass: jobs.ClassAccount},
		{name: "inactive access key", action: "ListApplications", status: 400,
			body: `{"Code":"InvalidAccessKeyId.Inactive"}`, wantClass: jobs.ClassAccount},
		{name: "signature mismatch keeps its message but not the STS token", action: "RestartInstances", status: 400,
			body:      `{"RequestId":"r","HostId":"sae.cn-hangzhou.aliyuncs.com","Code":"SignatureDoesNotMatch","Message":` + jsonQuote(sdsMessage) + `}`,
			wantClass: jobs.ClassAccount, wantInMsg: "server string to sign is:"},
		{name: "incomplete signature", action: "DescribeChangeOrder", status: 400, body: `{"Code":"IncompleteSignature"}`, wantClass: jobs.ClassAccount},
		{name: "expired timestamp", action: "DescribeChangeOrder", status: 400,
			body: `{"Code":"InvalidTimeStamp.Expired","Message":"Specified time stamp or date value is expired."}`, wantClass: jobs.ClassAccount},
		{name: "expired security token", action: "DescribeChangeOrder", status: 400, body: `{"Code":"InvalidSecurityToken.Expired"}`, wantClass: jobs.ClassAccount},
		{name: "application not found is fatal", action: "DescribeApplicationStatus", status: 400,
			body:      `{"ErrorCode":"InvalidApplication.NotFound","Code":"400","Message":"The current application does not exist."}`,
			wantClass: jobs.ClassFatal, wantCode: "InvalidApplication.NotFound", wantInMsg: "does not exist"},
		{name: "app id not found is fatal", action: "ListChangeOrders", status: 404, body: `{"Code":"InvalidAppId.NotFound"}`, wantClass: jobs.ClassFatal},
		{name: "change order not found is fatal", action: "DescribeChangeOrder", status: 400, body: `{"Code":"InvalidChangeOrder.NotFound"}`, wantClass: jobs.ClassFatal},
		{name: "parameter with message is fatal", action: "RestartInstances", status: 400, body: `{"Code":"InvalidParameter.WithMessage"}`, wantClass: jobs.ClassFatal},
		{name: "an unrecognised code is unknown", action: "DescribeChangeOrder", status: 400,
			body: `{"Code":"Something.New","Message":"new"}`, wantClass: jobs.ClassUnknown, wantCode: "Something.New"},
		{name: "an unrecognised 5xx code on a read is retryable", action: "DescribeChangeOrder", status: 504, body: `{"Code":"GatewayTimeout"}`, wantClass: jobs.ClassRetryable},
		{name: "429 is retryable", action: "DescribeChangeOrder", status: 429, body: `{}`, wantClass: jobs.ClassRetryable},
		{name: "object Code does not panic", action: "DescribeChangeOrder", status: 400, body: `{"Code":{"x":1},"Message":["a"]}`, wantClass: jobs.ClassUnknown},
		{name: "read timeout is retryable", action: "DescribeChangeOrder", transport: timeoutErr{}, wantClass: jobs.ClassRetryable, wantCode: CodeTransport},
		{name: "submit timeout is ambiguous", action: "RestartInstances", transport: timeoutErr{}, wantClass: jobs.ClassAmbiguous, wantCode: CodeTransport},
		{name: "submit connection reset is ambiguous", action: "RestartInstances",
			transport: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, wantClass: jobs.ClassAmbiguous},
		{name: "submit EOF after sending is ambiguous", action: "RestartInstances", transport: io.ErrUnexpectedEOF, wantClass: jobs.ClassAmbiguous},
		{name: "submit connection refused was never sent", action: "RestartInstances",
			transport: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, wantClass: jobs.ClassRetryable},
		{name: "submit marked not sent is retryable", action: "RestartInstances",
			transport: fmt.Errorf("%w: %w", errNotSent, errors.New("tls handshake")), wantClass: jobs.ClassRetryable},
		{name: "submit DNS failure is retryable", action: "RestartInstances", transport: &net.DNSError{Err: "no such host", Name: "sae.example"}, wantClass: jobs.ClassRetryable},
		{name: "unknown action counts as mutating", action: "DeployApplication", transport: io.EOF, wantClass: jobs.ClassAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.action, tt.status, []byte(tt.body), tt.transport)
			if tt.wantNil {
				if got != nil {
					t.Fatalf("Classify() = %v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("Classify() = nil, want class %s", tt.wantClass)
			}
			if got.Class != tt.wantClass {
				t.Errorf("Classify().Class = %s, want %s (err %v)", got.Class, tt.wantClass, got)
			}
			if tt.wantCode != "" && got.Code != tt.wantCode {
				t.Errorf("Classify().Code = %q, want %q", got.Code, tt.wantCode)
			}
			if tt.wantInMsg != "" && !strings.Contains(got.Message, tt.wantInMsg) {
				t.Errorf("Classify().Message = %q, want it to contain %q", got.Message, tt.wantInMsg)
			}
			if tt.wantStatus != 0 && got.HTTPStatus != tt.wantStatus {
				t.Errorf("Classify().HTTPStatus = %d, want %d", got.HTTPStatus, tt.wantStatus)
			}
			if got.Action != tt.action {
				t.Errorf("Classify().Action = %q, want %q", got.Action, tt.action)
			}
			if strings.Contains(got.Error(), testSTSToken[:40]) {
				t.Errorf("Classify().Error() leaks the STS token: %q", got.Error())
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string {
	return "Put \"http://127.0.0.1:1/x\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
}
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyTransportKeepsChain(t *testing.T) {
	got := Classify("DescribeChangeOrder", 0, nil, fmt.Errorf("get: %w", context.DeadlineExceeded))
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("errors.Is(Classify(), DeadlineExceeded) = false, want true (%v)", got)
	}
	if got.HTTPStatus != 0 {
		t.Errorf("Classify().HTTPStatus = %d, want 0", got.HTTPStatus)
	}
}

func TestIsMutating(t *testing.T) {
	tests := []struct {
		action string
		want   bool
	}{
		{"RestartInstances", true},
		{"AbortChangeOrder", true},
		{"RestartApplication", true},
		{"DescribeChangeOrder", false},
		{"ListApplications", false},
		{"", true},
	}
	for _, tt := range tests {
		if got := isMutating(tt.action); got != tt.want {
			t.Errorf("isMutating(%q) = %v, want %v", tt.action, got, tt.want)
		}
	}
}

// FuzzClassify: no input may panic, every failure has a class, and no secret
// planted in a body comes back out.
func FuzzClassify(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"RequestId":"r","Message":"success","Code":"200","Success":true,"Data":{"ChangeOrderId":"co-1"}}`},
		{400, `{"RequestId":"r","Code":"Application.ChangerOrderRunning","Message":"An application change process is in progress.","Success":false}`},
		{400, `{"Code":"400","ErrorCode":"Application.InvalidStatus","Success":false,"Data":null}`},
		{200, `{"Code":"400","ErrorCode":"System.Upgrading","Success":false}`},
		{400, `{"Code":400,"Message":"numeric"}`},
		{400, `{"Code":"Throttling.User","Message":"Request was denied due to user flow control.","HostId":"sae.cn-hangzhou.aliyuncs.com"}`},
		{400, `{"Code":"SignatureDoesNotMatch","Message":` + jsonQuote(sdsMessage) + `}`},
		{502, "<html><body>502 Bad Gateway</body></html>"},
		{200, `{"Code":"200","Success":true,"Data":{"Instances":{"a":1}}}`},
		{200, `{"RequestId":"r","Code":"200","Succ`},
		{500, ""},
		{404, `{"Code":"InvalidAppId.NotFound"}`},
		{400, `{"Code":null,"ErrorCode":[1],"Message":{"a":"b"},"Success":"maybe"}`},
		{200, `"just a string"`},
		{200, `null`},
	}
	actions := []string{"RestartInstances", "DescribeChangeOrder"}
	for i, s := range seeds {
		f.Add(actions[i%2], s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, action string, status int, body []byte) {
		secret := "x-acs-security-token:" + testSTSToken
		planted := append(append([]byte(`{"Code":"SignatureDoesNotMatch","Message":"`), []byte(strings.ReplaceAll(secret, `"`, ""))...), body...)
		for _, b := range [][]byte{body, planted} {
			se := Classify(action, status, b, nil)
			if se == nil {
				continue
			}
			if se.Class == "" {
				t.Fatalf("Classify(%q, %d, %q).Class is empty", action, status, b)
			}
			if strings.Contains(se.Error(), testSTSToken[:32]) {
				t.Fatalf("Classify(%q, %d, %q).Error() leaks the token: %q", action, status, b, se.Error())
			}
		}
		if se := Classify(action, status, body, errors.New(string(body))); se == nil || se.Class == "" {
			t.Fatalf("Classify() with a transport error = %v, want a classified error", se)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	bodies := [][]byte{
		[]byte(`{"RequestId":"r","Message":"success","Code":"200","Success":true,"Data":{"ChangeOrderId":"co-1"}}`),
		[]byte(`{"RequestId":"r","TraceId":"t","Code":"400","ErrorCode":"Application.ChangerOrderRunning","Message":"An application change process is in progress.","Success":false}`),
		[]byte(`{"Code":"SignatureDoesNotMatch","Message":` + jsonQuote(sdsMessage) + `}`),
	}
	for b.Loop() {
		for _, body := range bodies {
			Classify("RestartInstances", 400, body, nil)
		}
	}
}
