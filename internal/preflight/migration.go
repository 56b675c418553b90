package preflight

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/poolsahead"
)

// Migration is the pool migration the remaining steps perform, derived from the
// roles their actions declare (decl.PoolRole) and their rendered parameters:
//
//   - old pools: those a step leaves (disables, moves pods or tunnel addresses
//     from, deletes);
//   - new pools: those a step creates (its spec from the step's own parameters,
//     since the pool may not exist yet), moves pods to or verifies (read from
//     the cluster).
//
// A name whose parameters are known only after apply is skipped. An old pool that
// no longer exists is simply not in Old (a finished migration run again).
type Migration struct {
	// Pools are the cluster's pools now.
	Pools []calico.Pool
	// Old are the pools being moved away from, as they are now.
	Old []calico.Pool
	// New are the pools being moved to: as ensurePool will make them (Planned), or
	// as they are.
	New []NewPool
	// ClusterCIDROverride is ensurePool's clusterCIDR parameter, when given.
	ClusterCIDROverride map[string]netip.Prefix
	// Incomplete names a pool step whose parameters are known only after apply:
	// checks comparing old and new pools cannot tell what is missing then.
	Incomplete string
	// For one move of several (see hops): Via names, per old pool, the CIDRs
	// of the pools an earlier move emptied into it (their pods are the ones
	// this move moves on), and Freed the pools earlier steps delete (their
	// blocks are gone by then).
	Via   map[string][]netip.Prefix
	Freed []poolsahead.Freed
}

// NewPool is a pool the migration moves to.
type NewPool struct {
	calico.Pool
	// Planned: not created yet, the spec comes from the ensurePool step.
	Planned bool
	Step    string // the ensurePool step, when there is one
}

// After returns the pools as they will be once the migration's pool steps ran:
// new pools created (or converged), old pools disabled.
func (m *Migration) After() []calico.Pool {
	var out []calico.Pool
	for _, p := range m.Pools {
		if m.isNew(p.Name) {
			continue
		}
		if m.IsOld(p.Name) {
			p.Spec.Disabled = true
		}
		out = append(out, p)
	}
	for _, n := range m.New {
		out = append(out, n.Pool)
	}
	return out
}

// IsOld reports whether the pool is one the migration moves away from.
func (m *Migration) IsOld(name string) bool {
	return slices.ContainsFunc(m.Old, func(p calico.Pool) bool { return p.Name == name })
}

func (m *Migration) isNew(name string) bool {
	return slices.ContainsFunc(m.New, func(p NewPool) bool { return p.Name == name })
}

// NewOfFamily returns the new pools of a family.
func (m *Migration) NewOfFamily(f calico.Family) []NewPool {
	var out []NewPool
	for _, n := range m.New {
		if n.Family() == f {
			out = append(out, n)
		}
	}
	return out
}

// errNoCalico is returned by Migration when Calico cannot be read.
var errNoCalico = errors.New("calico pools and IPAM are not readable")

// Migration derives the migration from the steps (once per Run).
func (in *Input) Migration(ctx context.Context) (*Migration, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.mig != nil || in.migEr != nil {
		return in.mig, in.migEr
	}
	in.mig, in.migEr = in.migration(ctx)
	return in.mig, in.migEr
}

func (in *Input) migration(ctx context.Context) (*Migration, error) {
	if in.Calico == nil {
		if in.Unavailable != nil {
			return nil, fmt.Errorf("%w: %v", errNoCalico, in.Unavailable)
		}
		return nil, errNoCalico
	}
	pools, err := in.Calico.Pools(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pools: %w", err)
	}
	m := &Migration{Pools: pools, ClusterCIDROverride: map[string]netip.Prefix{}}
	addOld := func(name string) {
		if name == "" || m.IsOld(name) {
			return
		}
		if p := calico.FindPool(pools, name); p != nil {
			m.Old = append(m.Old, *p)
		}
	}
	addExisting := func(name string) {
		if name == "" || m.isNew(name) {
			return
		}
		if p := calico.FindPool(pools, name); p != nil {
			m.New = append(m.New, NewPool{Pool: *p})
		}
	}
	for _, s := range in.Steps {
		if s.With == nil {
			if s.Plays(poolRoles...) && m.Incomplete == "" {
				m.Incomplete = s.ID
			}
			continue
		}
		for _, pp := range s.Pools {
			name := s.Named(pp)
			switch {
			case pp.Role == decl.PoolCreates:
				np, override, err := plannedPool(s, name, pools)
				if err != nil {
					return nil, err
				}
				if i := slices.IndexFunc(m.New, func(p NewPool) bool { return p.Name == np.Name }); i >= 0 {
					m.New[i] = np
				} else {
					m.New = append(m.New, np)
				}
				if override.IsValid() {
					m.ClusterCIDROverride[np.Name] = override
				}
			case pp.Role.Leaves():
				addOld(name)
			case pp.Role.Enters():
				addExisting(name)
			}
		}
	}
	// A pool both created and disabled by the runbook is an odd runbook, not a
	// migration target.
	m.New = slices.DeleteFunc(m.New, func(p NewPool) bool { return m.IsOld(p.Name) })
	if in.ahead != nil && in.live != nil {
		live, err := in.live.Pools(ctx)
		if err != nil {
			return nil, fmt.Errorf("read pools: %w", err)
		}
		m.Freed = in.ahead.Freed(live)
		m.Via = map[string][]netip.Prefix{}
		for _, o := range m.Old {
			fut, _ := in.ahead.Touched(o.Name)
			if !fut.MayHoldPods() || fut.FilledFrom == "" {
				continue
			}
			if from := calico.FindPool(live, fut.FilledFrom); from != nil && from.CIDR.IsValid() {
				m.Via[o.Name] = append(m.Via[o.Name], from.CIDR)
			}
		}
	}
	return m, nil
}

// freed reports whether addr lies in a pool an earlier step deletes.
func (m *Migration) freed(addr netip.Addr) bool {
	return slices.ContainsFunc(m.Freed, func(f poolsahead.Freed) bool { return f.CIDR.Contains(addr) })
}

// plannedPool is the pool called name a step creating it converges to: the
// existing pool with the step's fields applied (decl.PoolCreates says which),
// or a new one.
func plannedPool(s Step, name string, pools []calico.Pool) (NewPool, netip.Prefix, error) {
	spec, cidr, err := poolsahead.PlannedSpec(s.With)
	if err != nil {
		return NewPool{}, netip.Prefix{}, fmt.Errorf("step %s: %w", s.ID, err)
	}
	np := NewPool{Pool: calico.Pool{Name: name, Spec: spec, CIDR: cidr}, Step: s.ID, Planned: true}
	if p := calico.FindPool(pools, name); p != nil {
		np.Pool.UID, np.Pool.ResourceVersion, np.Pool.Labels, np.Pool.Annotations = p.UID, p.ResourceVersion, p.Labels, p.Annotations
		np.Planned = false
	}
	var override netip.Prefix
	if o, _ := s.With["clusterCIDR"].(string); o != "" {
		if override, err = calico.ParseCIDR(o); err != nil {
			return NewPool{}, netip.Prefix{}, fmt.Errorf("step %s: with.clusterCIDR: %w", s.ID, err)
		}
	}
	return np, override, nil
}
