package main

import (
	"context"
	"io"

	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// cmdEmulator runs the SAE OpenAPI emulator in the foreground. Its keys are
// the fake account's, which is why they may be flags here and nowhere else.
func cmdEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return emulator.RunCommand(ctx, args, stdout, stderr)
}
