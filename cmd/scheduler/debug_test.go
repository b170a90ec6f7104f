package main

import (
	"strings"
	"testing"
	"time"
)

// TestSDKDebugIsRefused: DEBUG=sdk would make the SDK print request headers,
// STS token included; the commands that call SAE refuse to start with it,
// the others run.
func TestSDKDebugIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		debug    string
		args     []string
		wantCode int
	}{
		{name: "plan refuses DEBUG=sdk", debug: "sdk", args: []string{"plan", "-config", "../../schedules.example.yaml", "-schedule", "nightly-web"}, wantCode: exitUsage},
		{name: "trigger refuses sdk among other flags", debug: "http,sdk", args: []string{"trigger", "-config", "../../schedules.example.yaml", "-schedule", "nightly-web"}, wantCode: exitUsage},
		{name: "validate never calls SAE and runs", debug: "sdk", args: []string{"validate", "../../schedules.example.yaml"}, wantCode: exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := []string{"PATH=/usr/bin:/bin", "DEBUG=" + tt.debug, "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true"}
			r := runBin(t, 30*time.Second, env, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit = %d, want %d\nstderr: %s", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantCode == exitUsage && !strings.Contains(r.stderr, `DEBUG includes "sdk"`) {
				t.Errorf("stderr = %q, want it to say why", r.stderr)
			}
		})
	}
}

func TestSDKDebugOn(t *testing.T) {
	tests := []struct {
		debug string
		want  bool
	}{
		{"", false}, {"sdk", true}, {"http,sdk", true}, {"sdkx", false}, {"tea", false},
	}
	for _, tt := range tests {
		if got := sdkDebugOn(tt.debug); got != tt.want {
			t.Errorf("sdkDebugOn(%q) = %v, want %v", tt.debug, got, tt.want)
		}
	}
}
