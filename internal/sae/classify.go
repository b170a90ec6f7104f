package sae

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// Codes this package assigns itself (SAEError.Code) when SAE gave none.
const (
	// CodeTransport marks a failure below HTTP: dial, TLS, timeout, reset.
	CodeTransport = "transport"
	// CodeMalformed marks a response whose body is not the JSON envelope SAE
	// sends (an HTML page from a proxy, truncated JSON, a wrong shape).
	CodeMalformed = "MalformedResponse"
	// CodeCredentials marks a call the SDK could not sign, e.g. because the
	// default credential chain found no credentials (class account).
	CodeCredentials = "CredentialsUnavailable"
)

// errNotSent marks a transport error that happened before any byte of the
// request was written: the server cannot have acted on it.
var errNotSent = errors.New("request not sent")

// codeClass maps SAE's documented codes to their class. Codes not listed fall
// back to classByPrefix, then to the HTTP status.
var codeClass = map[string]jobs.ErrorClass{
	"Application.ChangerOrderRunning": jobs.ClassLock,
	// Seen spelled both ways in third-party code; the documented one has the extra r.
	"Application.ChangeOrderRunning": jobs.ClassLock,

	"System.Upgrading":           jobs.ClassRetryable,
	"Application.InvalidStatus":  jobs.ClassRetryable,
	"Throttling":                 jobs.ClassRetryable,
	"Throttling.User":            jobs.ClassRetryable,
	"Throttling.Api":             jobs.ClassRetryable,
	"Rejected.Throttling":        jobs.ClassRetryable,
	"ServiceUnavailable":         jobs.ClassRetryable,
	"InternalError":              jobs.ClassRetryable,
	"Application.NotDeployYet":   jobs.ClassNotDeployed,
	"InvalidParameter.Obviously": jobs.ClassFatal, // stale_instances on RestartInstances

	"user.indebt":                        jobs.ClassAccount,
	"NoComputeResourceQuota.Exceed":      jobs.ClassAccount,
	"NoComputeResourceQuota.User.Exceed": jobs.ClassAccount,
	"SignatureDoesNotMatch":              jobs.ClassAccount,
	"IncompleteSignature":                jobs.ClassAccount,
	"InvalidTimeStamp.Expired":           jobs.ClassAccount,
	"InvalidTimeStamp.Format":            jobs.ClassAccount,

	"InvalidApplication.NotFound":       jobs.ClassFatal,
	"InvalidParameter.NotEmpty":         jobs.ClassFatal,
	"InvalidParameter.WithMessage":      jobs.ClassFatal,
	"NoComputeResourceQuota.App.Exceed": jobs.ClassFatal,
	"InvalidAppId.NotFound":             jobs.ClassFatal,
	"InvalidChangeOrder.NotFound":       jobs.ClassFatal,
	"Resouce.no.permission":             jobs.ClassFatal, // sic, SAE's spelling
	"SignatureNonceUsed":                jobs.ClassFatal,
	"ContentMD5NotMatched":              jobs.ClassFatal,
}

// classByPrefix classifies code families; the first matching prefix wins.
var classByPrefix = []struct {
	prefix string
	class  jobs.ErrorClass
}{
	{"InvalidAccessKeyId.", jobs.ClassAccount},   // NotFound, Inactive
	{"InvalidSecurityToken.", jobs.ClassAccount}, // expired or malformed STS token
	{"InvalidParameter.", jobs.ClassFatal},
}

// knownCodes lists every code worth finding inside a message, longest first
// so that "Throttling.User" wins over "Throttling".
var knownCodes = func() []string {
	var out []string
	for c := range codeClass {
		out = append(out, c)
	}
	out = append(out, "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive")
	// Longest first, then lexical, so the search is deterministic.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (len(out[j]) > len(out[j-1]) || len(out[j]) == len(out[j-1]) && out[j] < out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}()

// IsKnownCode reports whether code is one this package classifies by name;
// metrics use it to keep their code label bounded.
func IsKnownCode(code string) bool {
	if _, ok := codeClass[code]; ok {
		return true
	}
	for _, p := range classByPrefix {
		if strings.HasPrefix(code, p.prefix) {
			return true
		}
	}
	return false
}

// isMutating reports whether action changes SAE's state. Unknown actions
// count as mutating: calling an outcome ambiguous is safe, retrying is not.
func isMutating(action string) bool {
	for _, p := range []string{"Describe", "List", "Get", "Query"} {
		if strings.HasPrefix(action, p) {
			return false
		}
	}
	return true
}

// envelope is what Classify reads from a body: SAE's success envelope,
// its business-error shape and the POP gateway's error shape.
type envelope struct {
	json        bool // the body is a JSON object
	code        string
	errorCode   string
	numericCode int // Code (or ErrorCode) holding an HTTP-like status, e.g. 400 or "200"
	message     string
	requestID   string
	success     *bool
}

// parseEnvelope reads the envelope fields leniently: any JSON type is
// accepted for any field, and a body that is not a JSON object yields
// json=false. It never panics.
func parseEnvelope(body []byte) envelope {
	var env envelope
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return env
	}
	env.json = true
	get := func(keys ...string) (string, bool) {
		for _, k := range keys {
			if raw, ok := m[k]; ok {
				return rawScalar(raw)
			}
		}
		return "", false
	}
	if s, ok := get("ErrorCode", "errorCode"); ok {
		if n, isNum := statusLike(s); isNum {
			env.numericCode = n
		} else if !isPlaceholder(s) {
			env.errorCode = s
		}
	}
	if s, ok := get("Code", "code"); ok {
		if n, isNum := statusLike(s); isNum {
			if env.numericCode == 0 {
				env.numericCode = n
			}
		} else if !isPlaceholder(s) {
			env.code = s
		}
	}
	env.message, _ = get("Message", "message", "Msg")
	env.requestID, _ = get("RequestId", "requestId")
	if raw, ok := m["Success"]; ok {
		if s, ok := rawScalar(raw); ok {
			switch strings.ToLower(s) {
			case "true":
				t := true
				env.success = &t
			case "false":
				f := false
				env.success = &f
			}
		}
	}
	return env
}

// rawScalar returns a JSON scalar as a string; objects, arrays and null give false.
func rawScalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return strings.TrimSpace(s), true
	case 't', 'f':
		s := string(raw)
		return s, s == "true" || s == "false"
	case '{', '[', 'n':
		return "", false
	default:
		return string(raw), true // a number
	}
}

// statusLike reports whether s is an HTTP-like numeric status ("200", 400,
// "400.0"), which SAE puts in Code when the real code is in ErrorCode.
func statusLike(s string) (int, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 999 {
		return 0, false
	}
	return int(f), true
}

// isPlaceholder reports values that mean "no error code".
func isPlaceholder(s string) bool {
	switch strings.ToLower(s) {
	case "", "success", "ok", "空", "null", "none":
		return true
	}
	return false
}

// Classify turns one SAE call's outcome into a classified error, or nil when
// the call succeeded (2xx and a JSON envelope whose Success is not false and
// which carries no error code). It is the one place that assigns classes; it
// is pure, never panics, and every text it keeps passes through Redact.
//
// transportErr, when not nil, is the failure below HTTP (httpStatus and body
// are then ignored). For a mutating action (anything but Describe*, List*,
// Get*, Query*) a failure that may have happened after the server received
// the request — a timeout, a lost connection, a 5xx, an unreadable 2xx — is
// ClassAmbiguous; for a read it is ClassRetryable. A transport error wrapping
// a dial failure is retryable even for a mutating action: nothing was sent.
//
// The error code is read from the body's ErrorCode, then Code (ignoring
// numeric statuses such as "400"), then searched for in Message.
func Classify(action string, httpStatus int, body []byte, transportErr error) *jobs.SAEError {
	mutating := isMutating(action)
	if transportErr != nil {
		return classifyTransport(action, mutating, transportErr)
	}
	env := parseEnvelope(body)
	ok2xx := httpStatus >= 200 && httpStatus < 300
	code := env.errorCode
	if code == "" {
		code = env.code
	}
	if ok2xx && env.json {
		failed := env.success != nil && !*env.success ||
			env.success == nil && (code != "" || env.numericCode >= 400)
		if !failed {
			return nil
		}
	}
	if code == "" && env.message != "" {
		code = findCode(env.message)
	}
	se := &jobs.SAEError{
		Action:     action,
		Code:       code,
		HTTPStatus: httpStatus,
		RequestID:  Redact(truncate(env.requestID, 128)),
	}
	switch {
	case env.json:
		se.Message = Redact(truncate(env.message, 2048))
	case len(bytes.TrimSpace(body)) == 0:
		se.Message = "empty response body"
	default:
		se.Message = "non-JSON response body: " + Redact(truncate(printable(body), 200))
	}
	if !env.json && ok2xx {
		// A 2xx whose body we cannot read: the server may have acted.
		se.Code = CodeMalformed
		se.Class = jobs.ClassRetryable
		if mutating {
			se.Class = jobs.ClassAmbiguous
		}
		return se
	}
	se.Class = classOfCode(action, code, httpStatus, mutating)
	return se
}

// classOfCode classifies a failed HTTP exchange by its code and status.
func classOfCode(action, code string, httpStatus int, mutating bool) jobs.ErrorClass {
	if code == "InvalidParameter.Obviously" && action == "RestartInstances" {
		return jobs.ClassStaleInstances
	}
	class, known := codeClass[code]
	if !known {
		for _, p := range classByPrefix {
			if strings.HasPrefix(code, p.prefix) {
				class, known = p.class, true
				break
			}
		}
	}
	if !known && strings.Contains(code, "Throttling") {
		class, known = jobs.ClassRetryable, true // TF's NeedRetry: any /Throttling/ code
	}
	if known {
		// These codes say SAE may have failed half way through: for a
		// mutating call only a lookup can tell whether it was carried out.
		if mutating && (code == "InternalError" || code == "ServiceUnavailable") {
			return jobs.ClassAmbiguous
		}
		return class
	}
	switch {
	case httpStatus >= 500:
		if mutating {
			return jobs.ClassAmbiguous
		}
		return jobs.ClassRetryable
	case httpStatus == http.StatusTooManyRequests:
		return jobs.ClassRetryable
	}
	return jobs.ClassUnknown
}

// findCode looks for a known code inside a message.
func findCode(msg string) string {
	for _, c := range knownCodes {
		if strings.Contains(msg, c) {
			return c
		}
	}
	return ""
}

// classifyTransport classifies a failure below HTTP.
func classifyTransport(action string, mutating bool, err error) *jobs.SAEError {
	se := &jobs.SAEError{
		Action:  action,
		Code:    CodeTransport,
		Message: Redact(truncate(err.Error(), 512)),
		Err:     redactedError{err},
		Class:   jobs.ClassRetryable,
	}
	if mutating && !notSent(err) {
		se.Class = jobs.ClassAmbiguous
	}
	return se
}

// notSent reports whether err proves the request never reached the server.
func notSent(err error) bool {
	if errors.Is(err, errNotSent) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return false
}

// redactedError keeps the error chain (errors.Is works, e.g. for
// context.DeadlineExceeded) while its text is redacted.
type redactedError struct{ err error }

func (e redactedError) Error() string { return Redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// isTimeout reports whether err is a timeout (for logs and metrics).
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}

// printable collapses whitespace and drops control bytes from a raw body.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == ' '
	}), " ")
}
