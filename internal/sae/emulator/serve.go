package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds how much of a request body is read (SAE's APIs here carry none).
const maxBody = 1 << 20

type result struct {
	data any
	top  map[string]any // extra top-level fields (ListApplications repeats its paging there)
	coID string         // change order created or addressed, for the event log
}

type handler func(s *Server, q url.Values, now time.Time) (result, *apiError)

type route struct {
	action string
	handle handler
}

// routes maps METHOD + path to the action (facts §1.1, SDK InitWithApiInfo).
// Routing never looks at x-acs-action: CommonRequests and pop-core omit it.
var routes = map[string]route{
	"PUT /pop/v1/sam/app/restartInstances":             {"RestartInstances", (*Server).restartInstances},
	"PUT /pop/v1/sam/app/restartApplication":           {"RestartApplication", (*Server).restartApplication},
	"GET /pop/v1/sam/changeorder/DescribeChangeOrder":  {"DescribeChangeOrder", (*Server).describeChangeOrder},
	"GET /pop/v1/sam/changeorder/ListChangeOrders":     {"ListChangeOrders", (*Server).listChangeOrders},
	"PUT /pop/v1/sam/changeorder/AbortChangeOrder":     {"AbortChangeOrder", (*Server).abortChangeOrder},
	"GET /pop/v1/sam/app/describeApplicationStatus":    {"DescribeApplicationStatus", (*Server).describeApplicationStatus},
	"GET /pop/v1/sam/app/describeApplicationInstances": {"DescribeApplicationInstances", (*Server).describeApplicationInstances},
	"GET /pop/v1/sam/app/describeApplicationGroups":    {"DescribeApplicationGroups", (*Server).describeApplicationGroups},
	"GET /pop/v1/sam/app/listApplications":             {"ListApplications", (*Server).listApplications},
	"GET /pop/v1/sam/app/describeApplicationConfig":    {"DescribeApplicationConfig", (*Server).describeApplicationConfig},
}

// answer is a fully built HTTP response.
type answer struct {
	status  int
	ctype   string
	body    []byte
	headers map[string]string
	drop    bool // close the connection without answering
}

// ServeHTTP answers one SAE OpenAPI call: route, authenticate, throttle,
// apply faults, carry the call out, answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.clk.Now()
	rt, known := routes[r.Method+" "+r.URL.Path]
	action := rt.action
	if !known {
		action = "UnknownRoute"
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	q := r.URL.Query()

	s.mu.Lock()
	s.calls[action]++
	reqID, traceID := s.requestIDsLocked()
	s.mu.Unlock()

	ev := Event{Time: now, Action: action, AppID: q.Get("AppId"), ChangeOrderID: q.Get("ChangeOrderId")}
	ak, aerr := s.authenticate(r, body)
	if aerr != nil {
		s.finish(w, r, ev, s.errorAnswer(aerr, r, reqID, traceID), aerr.code, "")
		return
	}

	s.mu.Lock()
	s.advanceLocked(now)
	if aerr := s.throttleLocked(ak, now); aerr != nil {
		s.mu.Unlock()
		s.finish(w, r, ev, s.errorAnswer(aerr, r, reqID, traceID), aerr.code, "")
		return
	}
	if !known {
		s.mu.Unlock()
		aerr := popErr(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
		s.finish(w, r, ev, s.errorAnswer(aerr, r, reqID, traceID), aerr.code, "")
		return
	}
	if ev.AppID == "" && ev.ChangeOrderID != "" {
		if co := s.cos[ev.ChangeOrderID]; co != nil {
			ev.AppID = co.a.id
		}
	}
	latency, f := s.requestFaultsLocked(action, ev.AppID, now)
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.mu.Lock()
			ev.Code, ev.Detail = "client_gone", string(FaultLatency)
			s.recordLocked(ev)
			s.mu.Unlock()
			return
		}
		now = s.clk.Now()
		ev.Time = now
	}

	if f != nil {
		if a, ok := s.preAnswerFault(f, r, reqID, traceID); ok {
			s.finish(w, r, ev, a, faultCode(f, a), string(f.Kind))
			return
		}
	}

	s.mu.Lock()
	s.advanceLocked(now)
	res, herr := rt.handle(s, q, now)
	if res.coID != "" {
		ev.ChangeOrderID = res.coID
	}
	s.mu.Unlock()

	var a answer
	code := "200"
	switch {
	case f != nil && f.Kind == FaultAcceptThen5xx:
		a = s.errorAnswer(popErr(503, "ServiceUnavailable", popMessages["ServiceUnavailable"].msg), r, reqID, traceID)
		code = "ServiceUnavailable"
	case f != nil && f.Kind == FaultAcceptThenDrop:
		a, code = answer{drop: true}, "dropped"
	case herr != nil:
		a, code = s.errorAnswer(herr, r, reqID, traceID), herr.code
	default:
		a = s.successAnswer(res, reqID, traceID)
		if f != nil {
			a, code = mangle(f.Kind, a)
		}
	}
	detail := ""
	if f != nil {
		detail = string(f.Kind)
	}
	s.finish(w, r, ev, a, code, detail)
}

func faultCode(f *Fault, a answer) string {
	switch f.Kind {
	case FaultCode:
		return f.Code
	case FaultHTTP5xx:
		if a.status == 500 {
			return "InternalError"
		}
		return "ServiceUnavailable"
	}
	return string(f.Kind)
}

// finish records the call in the event log and writes the answer.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, ev Event, a answer, code, detail string) {
	ev.Code, ev.HTTPStatus, ev.Detail = code, a.status, detail
	s.mu.Lock()
	s.recordLocked(ev)
	s.mu.Unlock()
	s.logf("emulator: %s %s app=%s co=%s -> %d %s %s", r.Method, ev.Action, ev.AppID, ev.ChangeOrderID, a.status, code, detail)
	if a.drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		// The documented way to abort a response when hijacking is impossible.
		panic(http.ErrAbortHandler)
	}
	for k, v := range a.headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", a.ctype)
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func (s *Server) requestIDsLocked() (reqID, traceID string) {
	return strings.ToUpper(s.newUUIDLocked()), s.randHex(30)
}

// throttleLocked applies the per-AccessKeyId sliding-minute quota in emulated time.
func (s *Server) throttleLocked(ak string, now time.Time) *apiError {
	if s.cfg.QuotaPerMinute < 0 {
		return nil
	}
	window := now.Add(-time.Minute)
	ts := s.quota[ak]
	i := 0
	for i < len(ts) && !ts[i].After(window) {
		i++
	}
	ts = ts[i:]
	if len(ts) >= s.cfg.QuotaPerMinute {
		s.quota[ak] = ts
		e := popErr(400, "Throttling.User", popMessages["Throttling.User"].msg)
		e.retryAfter = ts[0].Add(time.Minute).Sub(now)
		return e
	}
	s.quota[ak] = append(ts, now)
	return nil
}

// --- answers ---

func jsonBody(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

const jsonType = "application/json;charset=utf-8"

func (s *Server) successAnswer(res result, reqID, traceID string) answer {
	env := map[string]any{
		"RequestId": reqID, "TraceId": traceID, "Message": "success", "Code": "200", "Success": true, "Data": res.data,
	}
	for k, v := range res.top {
		env[k] = v
	}
	return answer{status: 200, ctype: jsonType, body: jsonBody(env)}
}

// errorAnswer shapes e: POP errors in the gateway shape, business errors per the configured modes.
func (s *Server) errorAnswer(e *apiError, r *http.Request, reqID, traceID string) answer {
	if e.pop {
		a := answer{status: e.status, ctype: jsonType, body: jsonBody(map[string]any{
			"RequestId": reqID, "HostId": r.Host, "Code": e.code, "Message": e.message,
			"Recommend": "https://next.api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.code) + "&product=sae",
		})}
		if e.retryAfter > 0 {
			a.headers = map[string]string{"x-acs-retry-after": strconv.FormatInt(e.retryAfter.Milliseconds(), 10)}
		}
		return a
	}
	body := map[string]any{
		"RequestId": reqID, "TraceId": traceID, "Code": e.code, "Message": e.message, "Success": false, "Data": nil,
	}
	if s.cfg.ErrorCodeIn == CodeInErrorCode {
		body["Code"] = strconv.Itoa(e.status)
		body["ErrorCode"] = e.code
	}
	status := e.status
	if s.cfg.BusinessErrorStatus == HTTP200 {
		status = 200
	}
	return answer{status: status, ctype: jsonType, body: jsonBody(body)}
}

// preAnswerFault builds the answer of a fault that replaces the call entirely.
func (s *Server) preAnswerFault(f *Fault, r *http.Request, reqID, traceID string) (answer, bool) {
	switch f.Kind {
	case FaultCode:
		return s.errorAnswer(codeError(f.Code, f.HTTPStatus), r, reqID, traceID), true
	case FaultHTTP5xx:
		code := "ServiceUnavailable"
		if f.HTTPStatus == 500 {
			code = "InternalError"
		}
		e := popErr(popMessages[code].status, code, popMessages[code].msg)
		if f.HTTPStatus != 0 {
			e.status = f.HTTPStatus
		}
		return s.errorAnswer(e, r, reqID, traceID), true
	case FaultHTML502:
		return answer{status: 502, ctype: "text/html", body: []byte(
			"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n")}, true
	case FaultNumericCode:
		code := f.Code
		if code == "" {
			code = "Application.InvalidStatus"
		}
		return answer{status: 400, ctype: jsonType, body: jsonBody(map[string]any{
			"RequestId": reqID, "TraceId": traceID, "Code": 400, "ErrorCode": code,
			"Message": messageFor(code), "Success": false, "Data": nil,
		})}, true
	}
	return answer{}, false
}

// mangle applies a body-corrupting fault to a successful answer.
func mangle(kind FaultKind, a answer) (answer, string) {
	switch kind {
	case FaultTruncatedJSON:
		a.body = a.body[:len(a.body)/2]
		return a, string(kind)
	case FaultObjectForArray:
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(a.body))
		dec.UseNumber()
		if dec.Decode(&v) == nil {
			v["Data"] = objectForFirstArray(v["Data"])
			a.body = jsonBody(v)
		}
		return a, string(kind)
	}
	return a, "200"
}

// objectForFirstArray replaces the first array found (breadth-first) with an
// object keyed by index, the shape of the docs' wrong JSON examples.
func objectForFirstArray(v any) any {
	toObj := func(arr []any) map[string]any {
		m := map[string]any{}
		for i, x := range arr {
			m[strconv.Itoa(i)] = x
		}
		return m
	}
	if arr, ok := v.([]any); ok {
		return toObj(arr)
	}
	queue := []map[string]any{}
	if m, ok := v.(map[string]any); ok {
		queue = append(queue, m)
	}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		for _, k := range sortedKeys(m) {
			switch x := m[k].(type) {
			case []any:
				m[k] = toObj(x)
				return v
			case map[string]any:
				queue = append(queue, x)
			}
		}
	}
	return v
}

// --- the documented error codes ---

type codeInfo struct {
	status int
	msg    string
	args   []any // defaults for the %s placeholders
}

// bizMessages are SAE business errors (restart-instances.md table, facts §4.3).
var bizMessages = map[string]codeInfo{
	"Application.ChangerOrderRunning":    {400, "An application change process is in progress. Please try again later.", nil},
	"Application.InvalidStatus":          {400, "The application status is abnormal. Please try again later.", nil},
	"System.Upgrading":                   {400, "The system is being upgraded. Please try again later.", nil},
	"InvalidApplication.NotFound":        {400, "The current application does not exist.", nil},
	"InvalidParameter.NotEmpty":          {400, "You must specify the parameter %s.", []any{"AppId"}},
	"InvalidParameter.Obviously":         {400, "The specified parameter is invalid {%s}.", []any{"InstanceIds"}},
	"InvalidParameter.WithMessage":       {400, "The parameter is invalid {%s}: %s", []any{"InstanceIds", "invalid value"}},
	"NoComputeResourceQuota.Exceed":      {400, "Your compute resource is insufficient. Please contact us to raise the quota.", nil},
	"NoComputeResourceQuota.App.Exceed":  {400, "You can create %s instances for each application. Please contact us to raise the quota.", []any{"50"}},
	"NoComputeResourceQuota.User.Exceed": {400, "Your account is limited to create %s instances. Please contact us to raise the quota.", []any{"500"}},
	"user.indebt":                        {400, "The user has an outstanding payment.", nil},
	"Application.NotDeployYet":           {400, "The application has not been deployed. Please deploy it and try again.", nil},
	"InvalidAppId.NotFound":              {404, "The specified AppId does not exist.", nil},
	"InvalidChangeOrder.NotFound":        {400, "The current change order does not exist.", nil},
	"Resouce.no.permission":              {400, "You are not authorized to operate on the specified resource.", nil},
}

// popMessages are POP gateway errors, answered in the POP shape whatever the modes.
var popMessages = map[string]codeInfo{
	"Throttling.User":             {400, "Request was denied due to user flow control.", nil},
	"Throttling":                  {400, "Request was denied due to flow control.", nil},
	"Rejected.Throttling":         {400, "Request was denied due to flow control.", nil},
	"ServiceUnavailable":          {503, "The request has failed due to a temporary failure of the server.", nil},
	"InternalError":               {500, "The request processing has failed due to some unknown error, exception or failure.", nil},
	"InvalidAccessKeyId.NotFound": {404, "Specified access key is not found.", nil},
	"InvalidAccessKeyId.Inactive": {400, "Specified access key is disabled.", nil},
	"SignatureDoesNotMatch":       {400, "Specified signature is not matched with our calculation.", nil},
	"IncompleteSignature":         {400, "The request signature does not conform to Aliyun standards.", nil},
	"InvalidTimeStamp.Expired":    {400, "Specified time stamp or date value is expired.", nil},
	"InvalidTimeStamp.Format":     {400, "Specified time stamp or date value is not well formatted.", nil},
	"SignatureNonceUsed":          {400, "Specified signature nonce was used already.", nil},
	"ContentMD5NotMatched":        {400, "Specified content md5 is not matched with your request body.", nil},
	"InvalidAction.NotFound":      {404, "Specified api is not found, please check your url and method.", nil},
}

func messageFor(code string, args ...any) string {
	info, ok := bizMessages[code]
	if !ok {
		info, ok = popMessages[code]
	}
	if !ok {
		return "The request failed: " + code + "."
	}
	n := strings.Count(info.msg, "%s")
	if n == 0 {
		return info.msg
	}
	full := append([]any{}, args...)
	for i := len(full); i < n; i++ {
		full = append(full, info.args[i])
	}
	return fmt.Sprintf(info.msg, full[:n]...)
}

// bizErr is the documented business error code with its message.
func bizErr(code string, args ...any) *apiError {
	info := bizMessages[code]
	return &apiError{status: info.status, code: code, message: messageFor(code, args...)}
}

// codeError is the error a FaultCode answers: its documented status and
// shape, unknown codes as 400 business errors; status > 0 overrides.
func codeError(code string, status int) *apiError {
	e := &apiError{status: 400, code: code, message: messageFor(code)}
	if info, ok := popMessages[code]; ok {
		e.status, e.pop = info.status, true
	} else if info, ok := bizMessages[code]; ok {
		e.status = info.status
	}
	if status > 0 {
		e.status = status
	}
	return e
}
