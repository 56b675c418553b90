package actions

import (
	"context"

	"github.com/runbookdev/runbook/internal/podmove"
)

// PodMoveEvent is one line of deletePodsInPool's live progress (a pod evicted or
// back, a progress summary with moved/total, in flight, waiting on PDBs, ETA).
type PodMoveEvent = podmove.Event

type podMoveEventsKey struct{}

// WithPodMoveEvents returns a context under which deletePodsInPool steps report
// their live progress to f (the CLI prints them, as JSON lines with -o json). Events
// come from one goroutine per step, in order; f must not block for long.
func WithPodMoveEvents(ctx context.Context, f func(step string, e PodMoveEvent)) context.Context {
	return context.WithValue(ctx, podMoveEventsKey{}, f)
}

func podMoveEvents(ctx context.Context, step string) func(podmove.Event) {
	f, _ := ctx.Value(podMoveEventsKey{}).(func(string, PodMoveEvent))
	if f == nil {
		return nil
	}
	return func(e podmove.Event) { f(step, e) }
}
