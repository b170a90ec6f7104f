package emulator

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// maxDateSkew is POP's tolerance between the request's Date and the server's real clock.
const maxDateSkew = 15 * time.Minute

// apiError is an error answer: a POP gateway error (pop: auth, throttling,
// routing, 5xx; string Code, RequestId, Message, HostId, Recommend; never
// Success or ErrorCode) or a business error shaped by the configured modes.
type apiError struct {
	status  int
	code    string
	message string
	pop     bool
	// retryAfter, when > 0, is sent as x-acs-retry-after (milliseconds).
	retryAfter time.Duration
}

func popErr(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message, pop: true}
}

// authenticate checks the ROA signature of r (facts §1.3) and returns the
// AccessKeyId, or the POP error to answer.
func (s *Server) authenticate(r *http.Request, body []byte) (string, *apiError) {
	h := lowerHeaders(r.Header)
	authz := h["authorization"]
	if authz == "" {
		// Assumption: a request without Authorization is IncompleteSignature
		// (the code the SDK groups with SignatureDoesNotMatch).
		return "", popErr(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	}
	rest, ok := strings.CutPrefix(authz, "acs ")
	i := strings.LastIndex(rest, ":")
	if !ok || i < 0 {
		return "", popErr(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	}
	ak, sig := rest[:i], rest[i+1:]
	if ak == "" {
		// A bearer-token request signs with an empty AccessKeyId; SAE is not known to accept bearer tokens.
		return "", popErr(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	secret, found := s.cfg.AccessKeys[ak]
	if !found {
		sts, isSTS := s.cfg.STSTokens[ak]
		if !isSTS {
			return "", popErr(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
		}
		tok, has := h["x-acs-security-token"]
		if !has || tok == "" {
			// Assumption: an STS AccessKeyId is unknown without its token.
			return "", popErr(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
		}
		if !hmac.Equal([]byte(tok), []byte(sts.Token)) {
			return "", popErr(400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey.")
		}
		secret = sts.Secret
	}
	date, err := http.ParseTime(h["date"])
	if err != nil {
		return "", popErr(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	// The skew check uses the real clock on purpose: the emulated clock may run fast.
	if skew := time.Since(date); skew > maxDateSkew || skew < -maxDateSkew {
		return "", popErr(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	if md5h, has := h["content-md5"]; has && md5h != "" {
		sum := md5.Sum(body)
		if md5h != base64.StdEncoding.EncodeToString(sum[:]) {
			return "", popErr(400, "ContentMD5NotMatched", "Specified content md5 is not matched with your request body.")
		}
	}
	variants := stringsToSign(r.Method, h, r.URL)
	matched := false
	for _, sts := range variants {
		if hmac.Equal([]byte(sig), []byte(signString(secret, sts))) {
			matched = true
			break
		}
	}
	if !matched {
		// SAE echoes its string to sign (which carries any security token); the client redacts it.
		return "", popErr(400, "SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:"+variants[0])
	}
	if nonce := h["x-acs-signature-nonce"]; nonce != "" {
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if exp, used := s.nonces[nonce]; used && now.Before(exp) {
			return "", popErr(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
		}
		if len(s.nonces) > 10000 {
			for k, exp := range s.nonces {
				if now.After(exp) {
					delete(s.nonces, k)
				}
			}
		}
		// A nonce only needs remembering while its Date is still acceptable.
		s.nonces[nonce] = date.Add(maxDateSkew + time.Minute)
	}
	return ak, nil
}

func lowerHeaders(hdr http.Header) map[string]string {
	h := make(map[string]string, len(hdr))
	for k, v := range hdr {
		h[strings.ToLower(k)] = strings.TrimSpace(strings.Join(v, ","))
	}
	return h
}

// stringsToSign returns the accepted StringToSign variants, the documented
// one first: padded Accept/Content-MD5/Content-Type/Date lines with
// empty-valued query keys as "key"; then "key="; then the SDK's
// skip-empty-line rule with both query forms.
func stringsToSign(method string, h map[string]string, u *url.URL) []string {
	var out []string
	for _, pad := range []bool{true, false} {
		for _, eq := range []bool{false, true} {
			sts := buildStringToSign(method, h, u, pad, eq)
			dup := false
			for _, o := range out {
				dup = dup || o == sts
			}
			if !dup {
				out = append(out, sts)
			}
		}
	}
	return out
}

func buildStringToSign(method string, h map[string]string, u *url.URL, padEmpty, emptyWithEquals bool) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteString("\n")
	for _, k := range []string{"accept", "content-md5", "content-type", "date"} {
		v := h[k]
		if v == "" && !padEmpty {
			continue
		}
		b.WriteString(v)
		b.WriteString("\n")
	}
	var acs []string
	for k := range h {
		if strings.HasPrefix(k, "x-acs-") {
			acs = append(acs, k)
		}
	}
	sort.Strings(acs)
	for _, k := range acs {
		b.WriteString(k)
		b.WriteString(":")
		b.WriteString(h[k])
		b.WriteString("\n")
	}
	b.WriteString(u.Path)
	q := u.Query()
	keys := sortedKeys(q)
	if len(keys) > 0 {
		b.WriteString("?")
		for i, k := range keys {
			if i > 0 {
				b.WriteString("&")
			}
			b.WriteString(k)
			if v := q.Get(k); v != "" || emptyWithEquals {
				b.WriteString("=")
				b.WriteString(v)
			}
		}
	}
	return b.String()
}

func signString(secret, stringToSign string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SignRequest signs r the way the Go SDK does (ROA HMAC-SHA1): it sets Date
// (if absent), Accept, Content-MD5 of body, Content-Type (if absent) and the
// x-acs-signature-* and x-acs-version headers, then Authorization. It is for
// tests that need raw HTTP access to the emulator (e.g. to read a body the
// SDK would panic on). body must be what r will send.
func SignRequest(r *http.Request, body []byte, accessKeyID, secret string) {
	if r.Header.Get("Date") == "" {
		r.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "application/json")
	}
	if r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/octet-stream")
	}
	sum := md5.Sum(body)
	r.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	for k, v := range map[string]string{
		"x-acs-signature-method":  "HMAC-SHA1",
		"x-acs-signature-version": "1.0",
		"x-acs-version":           "2019-05-06",
	} {
		if r.Header.Get(k) == "" {
			r.Header.Set(k, v)
		}
	}
	sts := buildStringToSign(r.Method, lowerHeaders(r.Header), r.URL, true, false)
	r.Header.Set("Authorization", "acs "+accessKeyID+":"+signString(secret, sts))
}
