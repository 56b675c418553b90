package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Every pause in the engine ends with its context: a signal or a lost lock is
// acted on at once, not after the pause (issue #24).
func TestSleepCtxEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	err := sleepCtx(ctx, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("sleepCtx = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("sleepCtx returned %v after a cancel 20ms in", took)
	}
	if err := sleepCtx(context.Background(), time.Millisecond); err != nil {
		t.Errorf("sleepCtx(1ms) = %v, want nil", err)
	}
}
