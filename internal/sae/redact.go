package sae

import (
	"regexp"
	"strings"
)

// redacted replaces every secret Redact finds.
const redacted = "[REDACTED]"

var (
	// secretHeader matches a secret-bearing header or parameter and its value
	// up to the end of the token: SignatureDoesNotMatch echoes the server's
	// string to sign, one "x-acs-security-token:<token>" line among others,
	// and JSON-escaped bodies carry "\n" as two characters, hence `\\`.
	secretHeader = regexp.MustCompile(`(?i)((?:x-acs-security-token|x-acs-bearer-token|x-acs-accesskey-id|x-acs-accesskey-secret|securitytoken|security_token|security-token|accesskeysecret|access_key_secret|accesskeyid|access_key_id|bearertoken|signature|authorization)"?\s*[:=]\s*"?)(?:acs\s+)?[^\s"&,;\\]+`)
	// acsAuth matches an "Authorization: acs AK:SIG" value wherever it appears
	// without its header name.
	acsAuth = regexp.MustCompile(`\bacs\s+[A-Za-z0-9._+/=-]*:[A-Za-z0-9+/=]+`)
	// accessKeyID matches Alibaba Cloud AccessKey IDs (LTAI…) and STS key IDs (STS.…).
	accessKeyID = regexp.MustCompile(`\b(?:LTAI[A-Za-z0-9]{8,40}|STS\.[A-Za-z0-9]{8,80})\b`)
	// stsToken matches STS security tokens, which start with "CAIS" and are long base64.
	stsToken = regexp.MustCompile(`CAIS[A-Za-z0-9+/=_-]{16,}`)
	// longOpaque matches any long base64 run; SAE's own IDs (UUIDs, pod names)
	// are hyphenated and short, so only secrets reach this length unbroken.
	longOpaque = regexp.MustCompile(`[A-Za-z0-9+/=]{64,}`)
)

// Redact removes credentials from s: STS security tokens, bearer tokens,
// AccessKey IDs and secrets, signatures and Authorization values, whether they
// appear as headers ("x-acs-security-token:…", as in SignatureDoesNotMatch's
// "server string to sign is:" echo), as query or form parameters, or bare.
// Everything this package keeps from a response body or a transport error
// passes through it. It never fails; non-secret text is kept.
func Redact(s string) string {
	if s == "" {
		return s
	}
	s = secretHeader.ReplaceAllString(s, "${1}"+redacted)
	s = acsAuth.ReplaceAllString(s, "acs "+redacted)
	s = accessKeyID.ReplaceAllString(s, redacted)
	s = stsToken.ReplaceAllString(s, redacted)
	s = longOpaque.ReplaceAllStringFunc(s, func(m string) string {
		// The redaction marker itself is short; anything this long is opaque.
		if strings.Contains(m, "REDACTED") {
			return m
		}
		return redacted
	})
	return s
}
