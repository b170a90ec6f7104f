package sae

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		secrets  []string // none may survive
		keep     []string // all must survive
		wantSame bool
	}{
		{name: "signature mismatch echo loses the STS token and keeps the rest", in: sdsMessage,
			secrets: []string{testSTSToken[:20], "x-acs-security-token:CAIS"},
			keep:    []string{"server string to sign is:", "x-acs-action:RestartInstances", "x-acs-security-token:" + redacted, "/pop/v1/sam/app/restartInstances?AppId=app-1"}},
		{name: "JSON-escaped string to sign loses the token", in: `{"Message":"server string to sign is:PUT\nx-acs-security-token:sts-secret-token-42\nx-acs-version:2019-05-06"}`,
			secrets: []string{"sts-secret-token-42"}, keep: []string{`\nx-acs-version:2019-05-06`}},
		{name: "authorization header value", in: "Authorization: acs LTAI5tAbCdEfGhIjKlMn:Zm9vYmFyYmF6cXV4PQ==",
			secrets: []string{"LTAI5tAbCdEfGhIjKlMn", "Zm9vYmFyYmF6cXV4PQ=="}},
		{name: "bare acs authorization value", in: "sent acs testak:c2lnbmF0dXJl to the server",
			secrets: []string{"testak:", "c2lnbmF0dXJl"}, keep: []string{"sent", "to the server"}},
		{name: "access key id alone", in: "key LTAI5tAbCdEfGhIjKlMn not found", secrets: []string{"LTAI5tAbCdEfGhIjKlMn"}, keep: []string{"not found"}},
		{name: "STS access key id", in: "key STS.NUgYrLnoC37mZZCNnAbez2 expired", secrets: []string{"NUgYrLnoC37mZZCNnAbez2"}},
		{name: "query parameters", in: "GET /?AccessKeyId=abc123&Signature=c2ln%3D&SecurityToken=tok&AppId=app-1",
			secrets: []string{"abc123", "c2ln%3D", "tok&"}, keep: []string{"AppId=app-1"}},
		{name: "JSON credential fields", in: `{"AccessKeyId":"ak-1","AccessKeySecret":"sk-1","SecurityToken":"tok-1","AppId":"a"}`,
			secrets: []string{"ak-1", "sk-1", "tok-1"}, keep: []string{`"AppId":"a"`}},
		{name: "bearer token header", in: "x-acs-bearer-token: bearer-abc", secrets: []string{"bearer-abc"}},
		{name: "bare STS token", in: "token " + testSTSToken + " end", secrets: []string{testSTSToken[:20]}, keep: []string{"token ", " end"}},
		{name: "ordinary SAE text is unchanged", wantSame: true,
			in: "The specified parameter is invalid {InstanceIds}: mysae-1daa7236-3844-4f36-b39a-605b0cc0caa6-abcde, request 91F93257-7A4A-4BD3-9A7E-2F6EAE6D0000"},
		{name: "signature method header is not a secret", in: "x-acs-signature-method:HMAC-SHA1\nx-acs-signature-version:1.0", wantSame: true},
		{name: "empty string", in: "", wantSame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.in)
			if tt.wantSame && got != tt.in {
				t.Errorf("Redact(%q) = %q, want it unchanged", tt.in, got)
			}
			for _, s := range tt.secrets {
				if strings.Contains(got, s) {
					t.Errorf("Redact() = %q, still contains %q", got, s)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(got, k) {
					t.Errorf("Redact() = %q, want it to keep %q", got, k)
				}
			}
			if again := Redact(got); again != got {
				t.Errorf("Redact(Redact(x)) = %q, want %q (idempotent)", again, got)
			}
		})
	}
}
