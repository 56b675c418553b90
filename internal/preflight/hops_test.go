package preflight

import (
	"fmt"
	"testing"

	"github.com/runbookdev/runbook/actions/decl"
)

func TestHopsSplitAMoveThereAndBack(t *testing.T) {
	ensure := roles("name", decl.PoolCreates)
	disable := roles("name", decl.PoolDisables)
	move := roles("pool", decl.PoolMovesPodsFrom, "targetPool", decl.PoolMovesPodsTo)
	tunnels := roles("pool", decl.PoolMovesTunnelsFrom)
	verify := roles("pool", decl.PoolVerifies)
	remove := roles("name", decl.PoolDeletes)
	blockSize := []Step{
		{ID: "add-temp", Pools: ensure, With: map[string]any{"name": "temp", "cidr": "10.0.128.0/17"}},
		{ID: "disable", Pools: disable, With: map[string]any{"name": "pool"}},
		{ID: "move-out", Pools: move, With: map[string]any{"pool": "pool", "targetPool": "temp"}},
		{ID: "tunnels-out", Pools: tunnels, With: map[string]any{"pool": "pool"}},
		{ID: "delete", Pools: remove, With: map[string]any{"name": "pool"}},
		{ID: "recreate", Pools: ensure, With: map[string]any{"name": "pool", "cidr": "10.0.0.0/17"}},
		{ID: "disable-temp", Pools: disable, With: map[string]any{"name": "temp"}},
		{ID: "verify", Pools: verify, With: map[string]any{"pool": "pool"}},
		{ID: "move-back", Pools: move, With: map[string]any{"pool": "temp", "targetPool": "pool"}},
		{ID: "tunnels-back", Pools: tunnels, With: map[string]any{"pool": "temp"}},
		{ID: "pause", With: map[string]any{}},
		{ID: "delete-temp", Pools: remove, With: map[string]any{"name": "temp"}},
	}
	show := func(hs []hop, steps []Step) string {
		if hs == nil {
			return "one migration"
		}
		s := ""
		for _, h := range hs {
			s += fmt.Sprintf("[%s→%s:", h.old, h.target)
			for _, i := range h.steps {
				s += " " + steps[i].ID
			}
			s += "]"
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		steps []Step
		want  string
	}{
		{"block size", blockSize, "[pool→temp: add-temp disable move-out tunnels-out delete][temp→pool: recreate disable-temp verify move-back tunnels-back delete-temp]"},
		{"one migration", migrationSteps(map[string]any{"name": "new", "cidr": "10.0.1.0/24"}), "one migration"},
		{"first half only", blockSize[:5], "one migration"},
		{"move back without a target pool", withoutTarget(blockSize, "move-back"), "[pool→temp: add-temp disable move-out tunnels-out delete][temp→: recreate disable-temp move-back tunnels-back delete-temp]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := show(hops(tc.steps), tc.steps); got != tc.want {
				t.Errorf("hops:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// withoutTarget drops the targetPool of step id.
func withoutTarget(steps []Step, id string) []Step {
	out := make([]Step, len(steps))
	for i, s := range steps {
		out[i] = s
		if s.ID == id {
			out[i].Pools = roles("pool", decl.PoolMovesPodsFrom, "targetPool", decl.PoolMovesPodsTo)
			out[i].With = map[string]any{"pool": s.With["pool"]}
		}
	}
	return out
}

// TestBlockSizeProcedurePassesPreflight: the two moves are checked one by one,
// each against the pools the steps before it leave; neither the temporary pool
// (left by the runbook after it creates it) nor the recreated pool is refused.
func TestBlockSizeProcedurePassesPreflight(t *testing.T) {
	w := newWorld()
	w.steps = []Step{
		{ID: "add-temp", Pools: roles("name", decl.PoolCreates), With: map[string]any{"name": "temp", "cidr": "10.0.128.0/17", "ipipMode": "Always", "vxlanMode": "Never"}},
		{ID: "disable", Pools: roles("name", decl.PoolDisables), With: map[string]any{"name": "old"}},
		{ID: "move-out", Pools: roles("pool", decl.PoolMovesPodsFrom, "targetPool", decl.PoolMovesPodsTo), With: map[string]any{"pool": "old", "targetPool": "temp"}},
		{ID: "delete", Pools: roles("name", decl.PoolDeletes), With: map[string]any{"name": "old"}},
		{ID: "recreate", Pools: roles("name", decl.PoolCreates), With: map[string]any{"name": "old", "cidr": "192.168.0.0/16", "blockSize": 24, "ipipMode": "Always", "vxlanMode": "Never", "clusterCIDR": "192.168.0.0/16"}},
		{ID: "disable-temp", Pools: roles("name", decl.PoolDisables), With: map[string]any{"name": "temp"}},
		{ID: "move-back", Pools: roles("pool", decl.PoolMovesPodsFrom, "targetPool", decl.PoolMovesPodsTo), With: map[string]any{"pool": "temp", "targetPool": "old"}},
		{ID: "delete-temp", Pools: roles("name", decl.PoolDeletes), With: map[string]any{"name": "temp"}},
	}
	fs := w.run(t)
	if b := Blocking(fs); len(b) > 0 {
		t.Fatalf("blocking findings:\n%s", dump(b))
	}
	capacity := map[string]string{}
	for _, f := range fs {
		if f.ID == "capacity" {
			capacity[f.Step] = f.Message
		}
	}
	// Per move: the three pods go into temp, and the same three come back
	// (they are in temp by then), into a pool whose old blocks are gone.
	for step, want := range map[string]string{
		"add-temp": "IPv4: 3 pods and 2 tunnel addresses to move into 32768 addresses (0 used)",
		"recreate": "IPv4: 3 pods and 0 tunnel addresses to move into 65536 addresses (0 used)",
	} {
		if capacity[step] != want {
			t.Errorf("capacity [%s] = %q, want %q\n%s", step, capacity[step], want, dump(fs))
		}
	}
}
