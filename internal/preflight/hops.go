package preflight

import (
	"slices"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/poolsahead"
)

// hop is one move of a runbook that moves pods more than once: the pods of old
// move into target, with the steps that prepare and finish that move.
type hop struct {
	old, target string
	move        int   // index of the step that moves the pods
	steps       []int // indexes of the hop's steps, in order
}

// hops splits steps into their moves when some pool is both left and entered
// (Calico's "change IP pool block size": into a temporary pool and back): each
// move's checks then see one old and one target pool, as a plain migration
// does, judged against the pools the earlier steps leave. nil when the steps
// are one migration (no pool both left and entered): they are checked as one.
//
// A step joins the hop whose pool it names in the same sense (a leaving role
// where the pool is the hop's old pool, an entering one where it is the
// target), the nearest one at or after it, else the last one before it. Steps
// that name no pool of any hop join none (the cluster-wide checks run once, on
// all steps), except that a pool created before a move without a target pool
// joins that move.
func hops(steps []Step) []hop {
	left, entered := map[string]bool{}, map[string]bool{}
	var out []hop
	for i, s := range steps {
		var from, to string
		for _, pp := range s.Pools {
			name := s.Named(pp)
			switch {
			case name == "":
			case pp.Role == decl.PoolMovesPodsFrom:
				from = name
			case pp.Role == decl.PoolMovesPodsTo:
				to = name
			}
			if name != "" && pp.Role.Leaves() {
				left[name] = true
			}
			if name != "" && pp.Role.Enters() {
				entered[name] = true
			}
		}
		if from != "" {
			out = append(out, hop{old: from, target: to, move: i})
		}
	}
	both := false
	for name := range left {
		both = both || entered[name]
	}
	if !both || len(out) < 2 {
		return nil
	}
	for i, s := range steps {
		best := -1
		for h := range out {
			if !joins(s, out[h]) {
				continue
			}
			switch {
			case best < 0:
				best = h
			case out[best].move < i && out[h].move >= i:
				best = h // a hop still ahead beats one already past
			case out[h].move < i && out[best].move < i && out[h].move > out[best].move:
				best = h // of the hops past, the latest
			}
		}
		if best < 0 && s.Plays(decl.PoolCreates) {
			// A move without a targetPool goes to any enabled pool: the pools
			// created since the previous move are where it goes.
			for h := range out {
				if out[h].target == "" && out[h].move > i && (h == 0 || out[h-1].move < i) {
					best = h
				}
			}
		}
		if best >= 0 {
			out[best].steps = append(out[best].steps, i)
		}
	}
	return out
}

// joins reports whether step s names one of h's pools in the sense h uses it.
func joins(s Step, h hop) bool {
	return slices.ContainsFunc(s.Pools, func(pp decl.PoolParam) bool {
		name := s.Named(pp)
		return name != "" && (pp.Role.Leaves() && name == h.old || pp.Role.Enters() && name == h.target)
	})
}

// runHops runs the pool checks once per hop, each on the hop's steps and on
// the pools as the steps before the hop leave them; the findings of every hop
// are merged, each said once.
func runHops(in *Input, hs []hop, run func(*Input) []Finding) []Finding {
	var out []Finding
	seen := map[string]bool{}
	for _, h := range hs {
		model := poolsahead.New()
		first := h.steps[0]
		for i := 0; i < first; i++ {
			_ = model.Step(in.Steps[i].ID, in.Steps[i].Pools, in.Steps[i].With)
		}
		sub := &Input{Cluster: in.Cluster, ahead: model, live: in.Calico}
		if in.Calico != nil {
			sub.Calico = model.Reader(in.Calico)
		}
		for _, i := range h.steps {
			sub.Steps = append(sub.Steps, in.Steps[i])
		}
		for _, f := range run(sub) {
			key := f.ID + "\x00" + f.Step + "\x00" + f.Subject + "\x00" + f.Message
			if !seen[key] {
				seen[key] = true
				out = append(out, f)
			}
		}
	}
	return out
}
