package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

// Every pause in the engine ends with its context: a signal or a lost lock is
// acted on at once, not after the pause (issue #24).
func TestSleepOnEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	err := sleepOn(ctx, clock.RealClock{}, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("sleepOn = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("sleepOn returned %v after a cancel 20ms in", took)
	}
	if err := sleepOn(context.Background(), clock.RealClock{}, time.Millisecond); err != nil {
		t.Errorf("sleepOn(1ms) = %v, want nil", err)
	}
}
