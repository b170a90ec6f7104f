package emulator

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sae"
)

func TestSignatureThroughTheSDK(t *testing.T) {
	e := newEnv(t, Config{})
	static := func(ak, secret string) func(t *testing.T) *sae.Client {
		return func(t *testing.T) *sae.Client { return e.clientWith(ak, secret) }
	}
	withTransport := func(rt http.RoundTripper) func(t *testing.T) *sae.Client {
		return func(t *testing.T) *sae.Client {
			c := e.client()
			c.SetTransport(rt)
			return c
		}
	}
	tests := []struct {
		name       string
		client     func(t *testing.T) *sae.Client
		wantStatus int    // 0 = success
		wantCode   string // POP code
		wantInMsg  string
	}{
		{name: "a good static key is accepted", client: static(testAK, testSecret)},
		{
			name: "an STS key with its token is accepted",
			client: func(t *testing.T) *sae.Client {
				c, err := sae.NewClientWithStsToken("cn-hangzhou", stsAK, stsSecret, stsToken)
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
		},
		{
			name: "a tampered query is SignatureDoesNotMatch with the server's string to sign",
			client: withTransport(tamper(func(r *http.Request) {
				q := r.URL.Query()
				q.Set("InstanceIds", "someone-else")
				r.URL.RawQuery = q.Encode()
			})),
			wantStatus: 400, wantCode: "SignatureDoesNotMatch", wantInMsg: "server string to sign is:PUT\napplication/json\n",
		},
		{name: "a wrong secret is SignatureDoesNotMatch", client: static(testAK, "wrong"), wantStatus: 400, wantCode: "SignatureDoesNotMatch", wantInMsg: "server string to sign is:"},
		{name: "an unknown key is InvalidAccessKeyId.NotFound", client: static("LTAI-nobody", testSecret), wantStatus: 404, wantCode: "InvalidAccessKeyId.NotFound"},
		{name: "an STS key without its token is InvalidAccessKeyId.NotFound", client: static(stsAK, stsSecret), wantStatus: 404, wantCode: "InvalidAccessKeyId.NotFound"},
		{
			name: "an STS key with another token is InvalidSecurityToken.MismatchWithAccessKey",
			client: func(t *testing.T) *sae.Client {
				c, err := sae.NewClientWithStsToken("cn-hangzhou", stsAK, stsSecret, "other-token")
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			wantStatus: 400, wantCode: "InvalidSecurityToken.MismatchWithAccessKey",
		},
		{
			name: "a bearer token (empty AccessKeyId) is InvalidAccessKeyId.NotFound",
			client: func(t *testing.T) *sae.Client {
				c, err := sae.NewClientWithOptions("cn-hangzhou", sdk.NewConfig(), credentials.NewBearerTokenCredential("bearer"))
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			wantStatus: 404, wantCode: "InvalidAccessKeyId.NotFound",
		},
		{
			name: "a Date 20 minutes old (real time) is InvalidTimeStamp.Expired",
			client: withTransport(tamper(func(r *http.Request) {
				r.Header.Set("Date", time.Now().Add(-20*time.Minute).UTC().Format(http.TimeFormat))
			})),
			wantStatus: 400, wantCode: "InvalidTimeStamp.Expired",
		},
		{
			name: "a Date 20 minutes ahead is InvalidTimeStamp.Expired",
			client: withTransport(tamper(func(r *http.Request) {
				r.Header.Set("Date", time.Now().Add(20*time.Minute).UTC().Format(http.TimeFormat))
			})),
			wantStatus: 400, wantCode: "InvalidTimeStamp.Expired",
		},
		{name: "a missing Date is InvalidTimeStamp.Format", client: withTransport(tamper(func(r *http.Request) { r.Header.Del("Date") })), wantStatus: 400, wantCode: "InvalidTimeStamp.Format"},
		{name: "a garbled Date is InvalidTimeStamp.Format", client: withTransport(tamper(func(r *http.Request) { r.Header.Set("Date", "yesterday") })), wantStatus: 400, wantCode: "InvalidTimeStamp.Format"},
		{
			name: "a body not matching Content-MD5 is ContentMD5NotMatched",
			client: withTransport(tamper(func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader("x"))
				r.ContentLength = 1
			})),
			wantStatus: 400, wantCode: "ContentMD5NotMatched",
		},
		{name: "a missing Authorization is IncompleteSignature", client: withTransport(tamper(func(r *http.Request) { r.Header.Del("Authorization") })), wantStatus: 400, wantCode: "IncompleteSignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := e.instanceIDs(appB)
			before := len(e.srv.ChangeOrders(appB))
			c := tt.client(t)
			req := sae.CreateRestartInstancesRequest()
			e.at(req.RoaRequest)
			req.AppId, req.InstanceIds = appB, ids[0]
			resp, err := c.RestartInstances(req)
			if tt.wantStatus == 0 {
				if err != nil || !resp.Success {
					t.Fatalf("RestartInstances() = %v, want success", err)
				}
				// Free the lock for the next case.
				e.clk.Advance(2 * time.Minute)
				return
			}
			se := serverError(t, err)
			if se.HttpStatus() != tt.wantStatus || se.ErrorCode() != tt.wantCode || !strings.Contains(se.Message(), tt.wantInMsg) {
				t.Errorf("RestartInstances() = %d %s %q, want %d %s containing %q", se.HttpStatus(), se.ErrorCode(), se.Message(), tt.wantStatus, tt.wantCode, tt.wantInMsg)
			}
			if se.RequestId() == "" || se.HostId() == "" {
				t.Errorf("POP error lacks RequestId/HostId: %v", se)
			}
			if strings.Contains(resp.GetHttpContentString(), `"Success"`) || strings.Contains(resp.GetHttpContentString(), `"ErrorCode"`) {
				t.Errorf("POP error body %s carries Success/ErrorCode", resp.GetHttpContentString())
			}
			if got := len(e.srv.ChangeOrders(appB)); got != before {
				t.Errorf("a rejected call created a change order (%d -> %d)", before, got)
			}
		})
	}
}

func TestWrongSecretEchoesTheSDKsStringToSign(t *testing.T) {
	e := newEnv(t, Config{})
	req := sae.CreateRestartInstancesRequest()
	e.at(req.RoaRequest)
	// Characters that the URL encodes but the string to sign keeps raw (facts §1.3).
	req.AppId, req.InstanceIds = "7171****", "a b,c&d"
	_, err := e.clientWith(testAK, "wrong").RestartInstances(req)
	se := serverError(t, err)
	// The SDK sets this Recommend only when the server's string to sign equals its own.
	if !strings.HasPrefix(se.Recommend(), "InvalidAccessKeySecret") {
		t.Errorf("Recommend() = %q, want InvalidAccessKeySecret (server string == client string)", se.Recommend())
	}
	if !strings.HasSuffix(se.Message(), "/pop/v1/sam/app/restartInstances?AppId=7171****&InstanceIds=a b,c&d") {
		t.Errorf("Message() = %q, want the decoded canonical resource", se.Message())
	}
}

func TestSecurityTokenIsOnlyEchoedInsideTheStringToSign(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name     string
		secret   string
		token    string
		wantCode string
		wantEcho bool
	}{
		{name: "wrong secret: the token appears inside the string to sign", secret: "wrong", token: stsToken, wantCode: "SignatureDoesNotMatch", wantEcho: true},
		{name: "wrong token: not echoed", secret: stsSecret, token: stsToken + "-x", wantCode: "InvalidSecurityToken.MismatchWithAccessKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := sae.NewClientWithStsToken("cn-hangzhou", stsAK, tt.secret, tt.token)
			if err != nil {
				t.Fatal(err)
			}
			req := sae.CreateDescribeApplicationStatusRequest()
			e.at(req.RoaRequest)
			req.AppId = appA
			resp, err := c.DescribeApplicationStatus(req)
			se := serverError(t, err)
			if se.ErrorCode() != tt.wantCode {
				t.Fatalf("ErrorCode() = %s, want %s", se.ErrorCode(), tt.wantCode)
			}
			body := resp.GetHttpContentString()
			if got := strings.Contains(body, tt.token); got != tt.wantEcho {
				t.Errorf("body contains token = %v, want %v: %s", got, tt.wantEcho, body)
			}
			if tt.wantEcho && !strings.Contains(se.Message(), "x-acs-security-token:"+tt.token+"\n") {
				t.Errorf("Message() = %q, want the token inside the string to sign", se.Message())
			}
		})
	}
	for _, ev := range e.srv.Events() {
		if strings.Contains(ev.Detail+ev.Code+ev.Action, stsToken) {
			t.Errorf("event %+v carries the security token", ev)
		}
	}
}

func TestSignatureVariantsAndNonces(t *testing.T) {
	e := newEnv(t, Config{})
	statusPath := "/pop/v1/sam/app/describeApplicationStatus?AppId=" + appA
	tests := []struct {
		name     string
		path     string
		mutate   func(r *http.Request)
		wantCode string
	}{
		{
			name: "an empty query value signed as key= is accepted (tea/pop-core form)",
			path: "/pop/v1/sam/changeorder/ListChangeOrders?AppId=" + appA + "&Key=",
			mutate: func(r *http.Request) {
				sts := buildStringToSign(r.Method, lowerHeaders(r.Header), r.URL, true, true)
				r.Header.Set("Authorization", "acs "+testAK+":"+signString(testSecret, sts))
			},
			wantCode: "200",
		},
		{
			name: "no Content-Type, signed with an empty line (pop-core) is accepted",
			path: statusPath,
			mutate: func(r *http.Request) {
				r.Header.Del("Content-Type")
				r.Header.Del("Authorization")
				SignRequest(r, nil, testAK, testSecret)
				r.Header.Del("Content-Type")
				sts := buildStringToSign(r.Method, lowerHeaders(r.Header), r.URL, true, false)
				r.Header.Set("Authorization", "acs "+testAK+":"+signString(testSecret, sts))
			},
			wantCode: "200",
		},
		{
			name: "extra x-acs headers are signed generically",
			path: statusPath,
			mutate: func(r *http.Request) {
				r.Header.Set("X-Acs-Region-Id", "cn-hangzhou")
				r.Header.Set("x-acs-signature-nonce", "nonce-extra")
				r.Header.Del("Authorization")
				SignRequest(r, nil, testAK, testSecret)
			},
			wantCode: "200",
		},
		{
			name: "an unsigned extra x-acs header breaks the signature",
			path: statusPath,
			mutate: func(r *http.Request) {
				r.Header.Set("x-acs-region-id", "cn-hangzhou")
			},
			wantCode: "SignatureDoesNotMatch",
		},
		{
			name:     "an unknown route is InvalidAction.NotFound",
			path:     "/pop/v1/sam/app/noSuchThing",
			wantCode: "InvalidAction.NotFound",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, body := e.raw(http.MethodGet, tt.path, tt.mutate)
			if got := decodeMap(t, body)["Code"]; got != tt.wantCode {
				t.Errorf("Code = %v, want %s (body %s)", got, tt.wantCode, body)
			}
		})
	}

	t.Run("a replayed nonce is SignatureNonceUsed", func(t *testing.T) {
		withNonce := func(r *http.Request) {
			r.Header.Set("x-acs-signature-nonce", "nonce-1")
			r.Header.Del("Authorization")
			SignRequest(r, nil, testAK, testSecret)
		}
		var codes []any
		for range 2 {
			_, _, body := e.raw(http.MethodGet, statusPath, withNonce)
			codes = append(codes, decodeMap(t, body)["Code"])
		}
		if codes[0] != "200" || codes[1] != "SignatureNonceUsed" {
			t.Errorf("codes = %v, want [200 SignatureNonceUsed]", codes)
		}
	})

	t.Run("routing ignores x-acs-action", func(t *testing.T) {
		_, _, body := e.raw(http.MethodGet, statusPath, func(r *http.Request) {
			r.Header.Set("x-acs-action", "RestartInstances")
			r.Header.Del("Authorization")
			SignRequest(r, nil, testAK, testSecret)
		})
		data, _ := decodeMap(t, body)["Data"].(map[string]any)
		if data["CurrentStatus"] != "RUNNING" {
			t.Errorf("body = %s, want a DescribeApplicationStatus answer", body)
		}
	})
}
