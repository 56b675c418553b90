package podmove

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
)

// Config is one run of the step.
type Config struct {
	Pool    Pool
	Targets []Pool // enabled pools the pods move to; at least one
	Scope   Scope
	Filters Filters
	// Strategy is ActEvict (default), ActDelete or ActRestart.
	Strategy Action
	// SingleReplicaRestart moves single-replica Deployments by a rollout restart
	// (surge: the new pod is Ready before the old one goes) whatever the strategy.
	SingleReplicaRestart bool
	// MaxUnavailable is the per-owner budget of owners no PDB covers (default 1).
	MaxUnavailable int
	// Concurrency bounds the pods in flight cluster-wide: evicted and not yet back.
	Concurrency int
	// PerNodeConcurrency bounds the pods moving on one node at once: leaving it,
	// or arriving on it and waiting for an address.
	PerNodeConcurrency int
	// Timeout fails the step, naming what blocks it (default 30m).
	Timeout time.Duration
	// Deadline (the run's --deadline) stops the step at a safe point: no new
	// evictions, return ErrDeadline; a later run resumes.
	Deadline time.Time
	// Since is when the step first began (kept in the run journal): pods created
	// later are replacements, and one with an address in the old pool means the pool
	// hands out addresses again.
	Since time.Time
	// RestartMark identifies this run and step on restarted pod templates.
	RestartMark string
	// Dynamic reads APIServices (may be nil: then only webhooks count as critical).
	Dynamic dynamic.Interface
	// Events receives live progress; may be nil.
	Events func(Event)
}

// Defaults that make a migration run at the control plane's pace while every owner
// keeps its budget. Budgets bound the pods in flight first; the global limit only
// keeps a huge cluster from flooding the API server. The per-node limit is what
// sets the pace: a node's CNI sets pods up and tears them down one at a time, so
// a few operations queued per node keep every node busy, while more only make
// each replacement wait longer for its address — and a budget slot stays taken
// for as long (measured in bench/: 6 beat 4 and 10 on the sandbox).
const (
	DefaultMaxUnavailable     = 1
	DefaultConcurrency        = 500
	DefaultPerNodeConcurrency = 6
	DefaultTimeout            = 30 * time.Minute
)

func (c *Config) withDefaults() error {
	if c.Strategy == "" {
		c.Strategy = ActEvict
	}
	switch c.Strategy {
	case ActEvict, ActDelete, ActRestart:
	default:
		return fmt.Errorf("unknown strategy %q", c.Strategy)
	}
	if c.MaxUnavailable <= 0 {
		c.MaxUnavailable = DefaultMaxUnavailable
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.PerNodeConcurrency <= 0 {
		c.PerNodeConcurrency = DefaultPerNodeConcurrency
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Filters.Unmanaged == "" {
		c.Filters.Unmanaged = UnmanagedRefuse
	}
	if c.Filters.Jobs == "" {
		c.Filters.Jobs = JobsWait
	}
	if !c.Pool.CIDR.IsValid() {
		return errors.New("no pool CIDR")
	}
	if c.Events == nil {
		c.Events = func(Event) {}
	}
	return nil
}

func (c *Config) setup(crit []criticalService) *setup {
	return &setup{pool: c.Pool, targets: c.Targets, scope: c.Scope, filters: c.Filters, strategy: c.Strategy,
		singleRestart: c.SingleReplicaRestart, since: c.Since.Truncate(time.Second), critical: crit}
}

// RefusedError is the step's refusal before it changed anything: every pod it
// cannot move safely, grouped by reason.
type RefusedError struct{ Problems []string }

func (e *RefusedError) Error() string { return strings.Join(e.Problems, "; ") }

// ErrDeadline: the run's --deadline passed; the step stopped issuing evictions.
var ErrDeadline = errors.New("deadline passed")

// maxListed bounds the pods named per line of a message.
const maxListed = 10

// StartTime is when a step starting now began, as the pods' creation timestamps
// will compare with it: the later of the local clock and the newest pod's creation
// (the API server's clock), so that a local clock running behind never makes a pod
// that existed at the start look like a replacement that landed in the old pool.
func StartTime(st Store, now time.Time) time.Time {
	t := now
	for _, p := range st.Pods() {
		if c := p.CreationTimestamp.Time; c.After(t) {
			t = c
		}
	}
	return t
}
