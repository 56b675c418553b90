package calico

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// index holds objects converted once, when the informer delivers them, so that
// guards evaluated on every cache change read plain values instead of decoding
// unstructured objects again. Objects that fail to convert are remembered, not
// dropped: a block that cannot be read must not make a pool look empty.
type index[T any] struct {
	mu    sync.RWMutex
	items map[string]T
	bad   map[string]error
}

func newIndex[T any]() *index[T] {
	return &index[T]{items: map[string]T{}, bad: map[string]error{}}
}

// set stores the converted object (or its conversion error) and reports whether
// that changed what readers see: node heartbeats, for one, change nothing here.
func (x *index[T]) set(key string, v T, err error) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err != nil {
		delete(x.items, key)
		x.bad[key] = err
		return true
	}
	old, had := x.items[key]
	_, wasBad := x.bad[key]
	delete(x.bad, key)
	x.items[key] = v
	return !had || wasBad || !reflect.DeepEqual(old, v)
}

func (x *index[T]) del(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.items, key)
	delete(x.bad, key)
}

func (x *index[T]) get(key string) (T, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	v, ok := x.items[key]
	return v, ok
}

// list returns the items sorted by key, and an error naming the objects that
// could not be converted (the items are returned either way).
func (x *index[T]) list() ([]T, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	keys := make([]string, 0, len(x.items))
	for k := range x.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = x.items[k]
	}
	return out, x.errLocked()
}

func (x *index[T]) errLocked() error {
	if len(x.bad) == 0 {
		return nil
	}
	keys := make([]string, 0, len(x.bad))
	for k := range x.bad {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errs := make([]error, len(keys))
	for i, k := range keys {
		errs[i] = fmt.Errorf("%s: %w", k, x.bad[k])
	}
	return errors.Join(errs...)
}

// notifier tells waiters and the engine that the cache changed. Waiters take the
// current channel before checking their condition, so no change is missed between
// the check and the wait.
type notifier struct {
	mu      sync.Mutex
	next    chan struct{}
	changes chan struct{} // capacity 1: bursts coalesce into one signal
}

func newNotifier() *notifier {
	return &notifier{next: make(chan struct{}), changes: make(chan struct{}, 1)}
}

func (n *notifier) fire() {
	n.mu.Lock()
	close(n.next)
	n.next = make(chan struct{})
	n.mu.Unlock()
	select {
	case n.changes <- struct{}{}:
	default:
	}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.next
}
