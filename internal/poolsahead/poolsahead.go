// Package poolsahead models the Calico pools as the steps of a runbook leave
// them, so that a plan judges each step against the cluster the earlier steps
// produce, not against the cluster as it is now.
//
// Calico's own procedures change one pool several times: "change IP pool block
// size" creates a temporary pool, disables the original, moves the pods to the
// temporary pool, deletes the original, recreates it with the new block size, and
// then disables, empties and deletes the temporary one. Planned step by step
// against today's cluster, the second half is nonsense (the temporary pool does
// not exist yet; the original still holds pods). The model follows the steps in
// order, from the pool roles their actions declare (decl.PoolRole) and their
// rendered parameters, never from action names; the planners overlay it on what
// they read (Client) and ask it what an earlier step did to a pool (Touched).
//
// The model knows what the steps do to pools, not what Calico and the
// controllers do in between: how many pods land in a pool, where calico-node
// moves tunnel addresses. Those stay "known after apply", and apply checks them
// against the live cluster as always.
package poolsahead

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
)

// Model is the pools as the steps planned so far leave them. The zero value is
// not usable; New makes one. A nil *Model is a model of no step: every method
// reads through to the cluster.
type Model struct {
	pools map[string]*Pool
}

// New returns a model of no step.
func New() *Model { return &Model{pools: map[string]*Pool{}} }

// Pool is what earlier steps do to one pool. The By fields name the last step
// that did each thing ("" when none did).
type Pool struct {
	Name string
	// Exists reports whether the pool exists after the earlier steps: set by a
	// creating step, cleared by a deleting one. Meaningful only when one of them
	// ran (CreatedBy or DeletedBy).
	Exists bool
	// Spec is the spec a creating step gives the pool (defaults applied).
	Spec      v3.IPPoolSpec
	CIDR      netip.Prefix
	CreatedBy string
	// DisabledBy: a step stops new allocations from the pool (or creates it disabled).
	DisabledBy string
	// EmptiedBy: a step moves the pods out of the pool; FilledBy: a step moves
	// pods into it (FilledFrom names where they come from).
	EmptiedBy  string
	FilledBy   string
	FilledFrom string
	// TunnelsMovedBy: a step moves the nodes' tunnel addresses out of the pool.
	TunnelsMovedBy string
	DeletedBy      string
	// History is what the steps do to the pool, in order ("created by add-temp-pool").
	History []string
	// mayHold: the last of the steps that fill the pool (create it, move pods
	// in) comes after the last that empties it.
	mayHold bool
	// TunnelsFrom: calico-node may move nodes' tunnel addresses into the pool
	// after this step disabled another pool or moved tunnels out of it.
	TunnelsFrom string
}

// MayHoldTunnels reports whether nodes' tunnel addresses may be in the pool
// after the earlier steps although the cluster shows none now.
func (p *Pool) MayHoldTunnels() bool {
	return p != nil && p.TunnelsFrom != "" && !p.Deleted()
}

// Created reports whether an earlier step creates the pool, and it still exists.
func (p *Pool) Created() bool { return p != nil && p.CreatedBy != "" && p.Exists }

// Deleted reports whether an earlier step deletes the pool (and none recreates it).
func (p *Pool) Deleted() bool { return p != nil && p.DeletedBy != "" && !p.Exists }

// MayHoldPods reports whether pods may hold addresses of the pool after the
// earlier steps although the cluster shows none now: pods moved into it, or a
// pool created (enabled) that new pods draw from.
func (p *Pool) MayHoldPods() bool {
	return p != nil && p.mayHold && !p.Deleted()
}

// Why says in a reader's words what the earlier steps do to the pool, in
// order, e.g. "created by add-temp-pool, disabled by disable-temp".
func (p *Pool) Why() string {
	if p == nil {
		return ""
	}
	return strings.Join(p.History, ", ")
}

// Touched returns what earlier steps do to the pool called name, and whether
// any does anything to it.
func (m *Model) Touched(name string) (*Pool, bool) {
	if m == nil {
		return nil, false
	}
	p, ok := m.pools[name]
	return p, ok
}

// Step records what a step that will run does to its pools: roles are its
// action's pool parameters (decl.Action.PoolParams), with its rendered
// parameters. A step whose parameters are not known (nil with) records nothing:
// the planners then see today's cluster for those pools, as before.
func (m *Model) Step(id string, roles []decl.PoolParam, with map[string]any) error {
	if m == nil || with == nil {
		return nil
	}
	named := func(pp decl.PoolParam) string { s, _ := with[pp.Param].(string); return s }
	var from string
	for _, pp := range roles {
		if pp.Role == decl.PoolMovesPodsFrom {
			from = named(pp)
		}
	}
	for _, pp := range roles {
		name := named(pp)
		if name == "" {
			continue
		}
		p := m.pool(name)
		switch pp.Role {
		case decl.PoolCreates:
			spec, cidr, err := PlannedSpec(with)
			if err != nil {
				return fmt.Errorf("step %s: %w", id, err)
			}
			// A (re)created pool starts afresh; DeletedBy stays, so a pool
			// deleted and recreated is known to be a new object.
			p.Spec, p.CIDR, p.Exists, p.CreatedBy = spec, cidr, true, id
			p.DisabledBy, p.EmptiedBy, p.FilledBy, p.FilledFrom, p.TunnelsMovedBy = "", "", "", "", ""
			p.History = append(p.History, "created by "+id)
			p.mayHold = !spec.Disabled
			if spec.Disabled {
				p.DisabledBy = id
			}
		case decl.PoolDisables:
			p.DisabledBy = id
			p.History = append(p.History, "disabled by "+id)
			m.tunnelsLeave(name, id)
		case decl.PoolMovesPodsFrom:
			p.EmptiedBy, p.mayHold = id, false
			p.History = append(p.History, "emptied by "+id)
		case decl.PoolMovesPodsTo:
			p.FilledBy, p.FilledFrom, p.mayHold = id, from, true
			what := "filled by " + id
			if from != "" {
				what = "filled from " + from + " by " + id
			}
			p.History = append(p.History, what)
		case decl.PoolMovesTunnelsFrom:
			p.TunnelsMovedBy, p.TunnelsFrom = id, ""
			p.History = append(p.History, "tunnel addresses moved out by "+id)
			m.tunnelsLeave(name, id)
		case decl.PoolDeletes:
			p.Exists, p.DeletedBy, p.mayHold, p.TunnelsFrom = false, id, false, ""
			p.History = append(p.History, "deleted by "+id)
		}
	}
	return nil
}

// tunnelsLeave: step id makes calico-node re-address tunnels out of pool
// from; the pools the earlier steps create and leave enabled may get them
// (which ones, calico-node decides by encapsulation, uses and selectors).
func (m *Model) tunnelsLeave(from, id string) {
	for name, p := range m.pools {
		if name != from && p.Created() && p.DisabledBy == "" {
			p.TunnelsFrom = id
		}
	}
}

func (m *Model) pool(name string) *Pool {
	p, ok := m.pools[name]
	if !ok {
		p = &Pool{Name: name}
		m.pools[name] = p
	}
	return p
}

// Pools returns the cluster's pools (live, as read now) as the earlier steps
// leave them: created pools added (or an existing one converged to the step's
// spec), disabled ones disabled, deleted ones gone. Sorted by name, like a list.
func (m *Model) Pools(live []calico.Pool) []calico.Pool {
	if m == nil || len(m.pools) == 0 {
		return live
	}
	out := make([]calico.Pool, 0, len(live)+len(m.pools))
	seen := map[string]bool{}
	for _, lp := range live {
		seen[lp.Name] = true
		p, ok := m.pools[lp.Name]
		if !ok {
			out = append(out, lp)
			continue
		}
		if fp, keep := p.apply(&lp); keep {
			out = append(out, fp)
		}
	}
	names := make([]string, 0, len(m.pools))
	for name := range m.pools {
		if !seen[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if fp, keep := m.pools[name].apply(nil); keep {
			out = append(out, fp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// apply returns the pool live (nil: absent now) becomes, and false when it does
// not exist after the earlier steps.
func (p *Pool) apply(live *calico.Pool) (calico.Pool, bool) {
	switch {
	case p.Deleted():
		return calico.Pool{}, false
	case p.Created():
		out := calico.Pool{Name: p.Name, Spec: p.Spec, CIDR: p.CIDR}
		if live != nil && p.DeletedBy == "" { // never deleted: converged in place
			out.UID, out.ResourceVersion, out.Labels, out.Annotations = live.UID, live.ResourceVersion, live.Labels, live.Annotations
		}
		if p.DisabledBy != "" {
			out.Spec.Disabled = true
		}
		return out, true
	case live == nil:
		return calico.Pool{}, false // disabled or emptied, but never there
	}
	out := *live
	if p.DisabledBy != "" {
		out.Spec.Disabled = true
	}
	return out, true
}

// Freed is a pool an earlier step deletes, with the CIDR its IPAM blocks lie in.
type Freed struct {
	Name string
	CIDR netip.Prefix
	By   string // the deleting step
}

// Freed lists the pools the earlier steps delete (and none recreates), with
// their CIDRs from live (the pools now) or from the step that created them.
func (m *Model) Freed(live []calico.Pool) []Freed {
	if m == nil {
		return nil
	}
	var out []Freed
	for name, p := range m.pools {
		if p.DeletedBy == "" {
			continue
		}
		cidr := p.CIDR
		if lp := calico.FindPool(live, name); lp != nil {
			cidr = lp.CIDR
		}
		if cidr.IsValid() {
			out = append(out, Freed{Name: name, CIDR: cidr, By: p.DeletedBy})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PlannedSpec is the spec a creating step (decl.PoolCreates, ensurePool's
// parameters) gives its pool, with Calico's defaults applied.
func PlannedSpec(with map[string]any) (v3.IPPoolSpec, netip.Prefix, error) {
	str := func(key string) string {
		v, _ := with[key].(string)
		return v
	}
	cidr, err := calico.ParseCIDR(str("cidr"))
	if err != nil {
		return v3.IPPoolSpec{}, netip.Prefix{}, fmt.Errorf("with.cidr: %w", err)
	}
	spec := v3.IPPoolSpec{CIDR: cidr.String(), IPIPMode: v3.IPIPMode(str("ipipMode")), VXLANMode: v3.VXLANMode(str("vxlanMode")),
		NodeSelector: str("nodeSelector")}
	spec.NATOutgoing, _ = with["natOutgoing"].(bool)
	spec.DisableBGPExport, _ = with["disableBGPExport"].(bool)
	spec.Disabled, _ = with["disabled"].(bool)
	switch bs := with["blockSize"].(type) {
	case int:
		spec.BlockSize = bs
	case int64:
		spec.BlockSize = int(bs)
	case float64:
		spec.BlockSize = int(bs)
	}
	if uses, ok := with["allowedUses"].([]any); ok {
		for _, u := range uses {
			if us, ok := u.(string); ok {
				spec.AllowedUses = append(spec.AllowedUses, v3.IPPoolAllowedUse(us))
			}
		}
	}
	return calico.WithDefaults(spec), cidr, nil
}

// Client returns c with its pool lists (the cache's and Live's) read through
// the model: a planner judging a step sees the pools the earlier steps leave.
// Everything else (blocks, pods, nodes, writes) is c's own. A nil model returns c.
func (m *Model) Client(c calico.Client) calico.Client {
	if m == nil || len(m.pools) == 0 || c == nil {
		return c
	}
	return &client{Client: c, m: m}
}

// Reader returns r with its pool list read through the model (see Client).
func (m *Model) Reader(r calico.Reader) calico.Reader {
	if m == nil || len(m.pools) == 0 || r == nil {
		return r
	}
	return &reader{Reader: r, m: m}
}

type client struct {
	calico.Client
	m *Model
}

// Touched is the model's Touched: a planner holding only the client asks it
// what the earlier steps do to a pool (Ahead in package actions).
func (c *client) Touched(name string) (*Pool, bool) { return c.m.Touched(name) }

func (c *client) Pools(ctx context.Context) ([]calico.Pool, error) {
	live, err := c.Client.Pools(ctx)
	return c.m.Pools(live), err
}

func (c *client) Live() calico.Reader { return &reader{Reader: c.Client.Live(), m: c.m} }

type reader struct {
	calico.Reader
	m *Model
}

func (r *reader) Pools(ctx context.Context) ([]calico.Pool, error) {
	live, err := r.Reader.Pools(ctx)
	return r.m.Pools(live), err
}
