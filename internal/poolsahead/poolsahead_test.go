package poolsahead

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
)

// The roles as the built-in actions declare them (actions/*.go).
var (
	ensure  = []decl.PoolParam{{Param: "name", Role: decl.PoolCreates}}
	disable = []decl.PoolParam{{Param: "name", Role: decl.PoolDisables}}
	move    = []decl.PoolParam{{Param: "pool", Role: decl.PoolMovesPodsFrom}, {Param: "targetPool", Role: decl.PoolMovesPodsTo}}
	tunnels = []decl.PoolParam{{Param: "pool", Role: decl.PoolMovesTunnelsFrom}}
	remove  = []decl.PoolParam{{Param: "name", Role: decl.PoolDeletes}}
)

type step struct {
	id    string
	roles []decl.PoolParam
	with  map[string]any
}

// blockSize is Calico's "change IP pool block size" procedure.
var blockSize = []step{
	{"add-temp", ensure, map[string]any{"name": "temp", "cidr": "10.0.128.0/17", "ipipMode": "Always"}},
	{"disable", disable, map[string]any{"name": "pool"}},
	{"move-out", move, map[string]any{"pool": "pool", "targetPool": "temp"}},
	{"tunnels-out", tunnels, map[string]any{"pool": "pool"}},
	{"delete", remove, map[string]any{"name": "pool"}},
	{"recreate", ensure, map[string]any{"name": "pool", "cidr": "10.0.0.0/17", "blockSize": 24, "ipipMode": "Always"}},
	{"disable-temp", disable, map[string]any{"name": "temp"}},
	{"move-back", move, map[string]any{"pool": "temp", "targetPool": "pool"}},
	{"delete-temp", remove, map[string]any{"name": "temp"}},
}

func live() []calico.Pool {
	return []calico.Pool{
		{Name: "other", UID: "u-other", CIDR: netip.MustParsePrefix("172.16.0.0/16"), Spec: v3.IPPoolSpec{CIDR: "172.16.0.0/16", BlockSize: 26}},
		{Name: "pool", UID: "u-pool", CIDR: netip.MustParsePrefix("10.0.0.0/17"), Spec: v3.IPPoolSpec{CIDR: "10.0.0.0/17", BlockSize: 26}},
	}
}

// state summarises the pools as "name/blockSize[/disabled][/uid]", sorted by name.
func state(pools []calico.Pool) string {
	var out []string
	for _, p := range pools {
		s := p.Name + "/" + strconv.Itoa(p.Spec.BlockSize)
		if p.Spec.Disabled {
			s += "/disabled"
		}
		if p.UID != "" {
			s += "/" + string(p.UID)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestModelFollowsTheBlockSizeProcedure: after each step, the pools the next
// step is planned against, and what the model says of the pool it names.
func TestModelFollowsTheBlockSizeProcedure(t *testing.T) {
	want := []struct{ pools, why string }{
		{"other/26/u-other pool/26/u-pool temp/26", "temp: created by add-temp"},
		{"other/26/u-other pool/26/disabled/u-pool temp/26", "pool: disabled by disable"},
		{"other/26/u-other pool/26/disabled/u-pool temp/26", "pool: disabled by disable, emptied by move-out"},
		{"other/26/u-other pool/26/disabled/u-pool temp/26", "pool: disabled by disable, emptied by move-out, tunnel addresses moved out by tunnels-out"},
		{"other/26/u-other temp/26", "pool: disabled by disable, emptied by move-out, tunnel addresses moved out by tunnels-out, deleted by delete"},
		// Recreated: a new object (no UID of the old one), with the new block size.
		{"other/26/u-other pool/24 temp/26", "pool: disabled by disable, emptied by move-out, tunnel addresses moved out by tunnels-out, deleted by delete, created by recreate"},
		{"other/26/u-other pool/24 temp/26/disabled", "temp: created by add-temp, filled from pool by move-out, disabled by disable-temp"},
		{"other/26/u-other pool/24 temp/26/disabled", "temp: created by add-temp, filled from pool by move-out, disabled by disable-temp, emptied by move-back"},
		{"other/26/u-other pool/24", "temp: created by add-temp, filled from pool by move-out, disabled by disable-temp, emptied by move-back, deleted by delete-temp"},
	}
	m := New()
	for i, s := range blockSize {
		if err := m.Step(s.id, s.roles, s.with); err != nil {
			t.Fatal(err)
		}
		if got := state(m.Pools(live())); got != want[i].pools {
			t.Errorf("after %s: pools %q, want %q", s.id, got, want[i].pools)
		}
		name, _, _ := strings.Cut(want[i].why, ": ")
		p, ok := m.Touched(name)
		if got := name + ": " + p.Why(); !ok || got != want[i].why {
			t.Errorf("after %s: %q, want %q", s.id, got, want[i].why)
		}
	}
}

// upTo returns the model after the block-size procedure's steps up to id.
func upTo(t *testing.T, id string) *Model {
	t.Helper()
	m := New()
	for _, s := range blockSize {
		if err := m.Step(s.id, s.roles, s.with); err != nil {
			t.Fatal(err)
		}
		if s.id == id {
			break
		}
	}
	return m
}

func TestPoolPredicates(t *testing.T) {
	for _, tc := range []struct {
		upTo, pool                    string
		created, deleted, mayHoldPods bool
	}{
		{"add-temp", "temp", true, false, true},   // new pods draw from it
		{"move-out", "temp", true, false, true},   // filled
		{"move-out", "pool", false, false, false}, // emptied, never created here
		{"delete", "pool", false, true, false},
		{"recreate", "pool", true, false, true},
		{"move-back", "temp", true, false, false}, // filled, then emptied
		{"delete-temp", "temp", true, true, false},
	} {
		m := upTo(t, tc.upTo)
		p, _ := m.Touched(tc.pool)
		if p.Created() != (tc.created && !tc.deleted) || p.Deleted() != tc.deleted || p.MayHoldPods() != tc.mayHoldPods {
			t.Errorf("%s after %s: created %t deleted %t mayHoldPods %t, want %t %t %t", tc.pool, tc.upTo,
				p.Created(), p.Deleted(), p.MayHoldPods(), tc.created && !tc.deleted, tc.deleted, tc.mayHoldPods)
		}
	}
}

func TestFreedNamesDeletedPoolsWithTheirCIDR(t *testing.T) {
	f := upTo(t, "delete").Freed(live())
	if len(f) != 1 || f[0].Name != "pool" || f[0].CIDR.String() != "10.0.0.0/17" || f[0].By != "delete" {
		t.Fatalf("Freed = %+v", f)
	}
}

// A step whose parameters are not known yet, a nil model and bad input.
func TestModelEdges(t *testing.T) {
	var nilModel *Model
	if err := nilModel.Step("x", ensure, map[string]any{"name": "p"}); err != nil {
		t.Fatal(err)
	}
	if got := state(nilModel.Pools(live())); got != state(live()) {
		t.Errorf("nil model changed the pools: %s", got)
	}
	if _, ok := nilModel.Touched("pool"); ok {
		t.Error("nil model touched a pool")
	}
	m := New()
	if err := m.Step("later", remove, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Touched("pool"); ok {
		t.Error("a step with unknown parameters changed the model")
	}
	err := m.Step("bad", ensure, map[string]any{"name": "p", "cidr": "10.0.0.0/33"})
	if err == nil || !strings.Contains(err.Error(), "step bad: with.cidr") {
		t.Errorf("bad cidr: %v", err)
	}
}

type fakeReader struct{ calico.Reader }

func (fakeReader) Pools(context.Context) ([]calico.Pool, error) { return live(), nil }

func TestReaderOverlaysOnlyPools(t *testing.T) {
	m := New()
	if err := m.Step("delete", remove, map[string]any{"name": "pool"}); err != nil {
		t.Fatal(err)
	}
	pools, err := m.Reader(fakeReader{}).Pools(context.Background())
	if err != nil || state(pools) != "other/26/u-other" {
		t.Fatalf("Pools = %s, %v", state(pools), err)
	}
}

// Tunnel addresses follow disabling and moving: into the pools the earlier
// steps created and left enabled, out of a pool whose tunnels a step moves.
func TestTunnelsMayFollow(t *testing.T) {
	for _, tc := range []struct {
		upTo, pool string
		want       bool
	}{
		{"add-temp", "temp", false},
		{"disable", "temp", true},
		{"tunnels-out", "temp", true},
		{"tunnels-out", "pool", false},
		{"recreate", "pool", false},
		{"disable-temp", "pool", true},
		{"delete-temp", "temp", false},
	} {
		m := upTo(t, tc.upTo)
		if p, _ := m.Touched(tc.pool); p.MayHoldTunnels() != tc.want {
			t.Errorf("%s after %s: MayHoldTunnels %t, want %t", tc.pool, tc.upTo, p.MayHoldTunnels(), tc.want)
		}
	}
}
