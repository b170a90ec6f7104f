package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sae"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

const (
	testAK     = "LTAI-test"
	testSecret = "test-secret"
	stsAK      = "STS.test"
	stsSecret  = "sts-secret"
	stsToken   = "sts-token-VALUE-must-not-leak"
	appA       = "1daa7236-3844-4f36-b39a-605b0cc0a001"
	appB       = "1daa7236-3844-4f36-b39a-605b0cc0a002"
)

// t0 is the fixed emulated start of every test world (18:00 in Shanghai).
var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	// The SDK's default credential chain must never reach the ECS metadata address.
	os.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	os.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	os.Exit(m.Run())
}

type env struct {
	t    *testing.T
	srv  *Server
	clk  *clock.Fake
	base string
	host string
	port string
}

// newEnv starts an emulator on a loopback port with a fake clock at t0.
// cfg.Apps defaults to appA (3 instances, 60 s restarts) and appB (2 instances).
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	cfg.Clock = clk
	if cfg.AccessKeys == nil {
		cfg.AccessKeys = map[string]string{testAK: testSecret}
	}
	if cfg.STSTokens == nil {
		cfg.STSTokens = map[string]STSKey{stsAK: {Secret: stsSecret, Token: stsToken}}
	}
	if cfg.Apps == nil {
		cfg.Apps = []AppSpec{
			{AppID: appA, AppName: "shop", NamespaceID: "cn-hangzhou:prod", Instances: 3, RestartTime: 60 * time.Second},
			{AppID: appB, AppName: "cart", NamespaceID: "cn-hangzhou:prod", Instances: 2, RestartTime: 60 * time.Second},
		}
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	base, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	return &env{t: t, srv: srv, clk: clk, base: base, host: host, port: port}
}

func (e *env) client() *sae.Client {
	return e.clientWith(testAK, testSecret)
}

func (e *env) clientWith(ak, secret string) *sae.Client {
	e.t.Helper()
	c, err := sae.NewClientWithAccessKey("cn-hangzhou", ak, secret)
	if err != nil {
		e.t.Fatalf("NewClientWithAccessKey() = %v", err)
	}
	return c
}

// at points an SDK request at the emulator (facts §2: Domain and Port separately).
func (e *env) at(r *requests.RoaRequest) {
	r.Domain, r.Port, r.Scheme = e.host, e.port, "http"
}

func (e *env) status(appID string) sae.DescribeApplicationStatusResponse {
	e.t.Helper()
	req := sae.CreateDescribeApplicationStatusRequest()
	e.at(req.RoaRequest)
	req.AppId = appID
	resp, err := e.client().DescribeApplicationStatus(req)
	if err != nil {
		e.t.Fatalf("DescribeApplicationStatus(%s) = %v", appID, err)
	}
	return *resp
}

func (e *env) restart(c *sae.Client, appID string, ids ...string) (string, error) {
	req := sae.CreateRestartInstancesRequest()
	e.at(req.RoaRequest)
	req.AppId = appID
	req.InstanceIds = strings.Join(ids, ",")
	resp, err := c.RestartInstances(req)
	if err != nil {
		return "", err
	}
	if !resp.Success {
		return "", errors.New("success false: " + resp.Code + " " + resp.ErrorCode)
	}
	return resp.Data.ChangeOrderId, nil
}

func (e *env) describeCO(id string) sae.DataInDescribeChangeOrder {
	e.t.Helper()
	req := sae.CreateDescribeChangeOrderRequest()
	e.at(req.RoaRequest)
	req.ChangeOrderId = id
	resp, err := e.client().DescribeChangeOrder(req)
	if err != nil {
		e.t.Fatalf("DescribeChangeOrder(%s) = %v", id, err)
	}
	return resp.Data
}

func (e *env) instanceIDs(appID string) []string {
	var ids []string
	for _, in := range e.srv.Instances(appID) {
		ids = append(ids, in.ID)
	}
	return ids
}

// serverError unwraps an SDK ServerError or fails the test.
func serverError(t *testing.T, err error) *sdkerrors.ServerError {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want *errors.ServerError", err, err)
	}
	return se
}

// raw sends a request signed like the SDK (SignRequest) and returns status, headers and body.
func (e *env) raw(method, pathQuery string, mutate func(*http.Request)) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+pathQuery, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	SignRequest(req, nil, testAK, testSecret)
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func decodeMap(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", body, err)
	}
	return m
}

// roundTripFunc lets a test tamper with a signed request on its way out.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func tamper(mutate func(*http.Request)) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mutate(r)
		return http.DefaultTransport.RoundTrip(r)
	})
}
