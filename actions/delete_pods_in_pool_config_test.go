package actions

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"

	"github.com/runbookdev/runbook/internal/calico"
)

// Issue #15 item 14: the pools pods move to must be disjoint from the one being
// emptied, or a replacement can land in both and the old pool never empties.
func TestMoveTargetsAreDisjointFromTheOldPool(t *testing.T) {
	mk := func(name, cidr string, disabled bool) calico.Pool {
		return calico.Pool{Name: name, CIDR: netip.MustParsePrefix(cidr),
			Spec: calico.WithDefaults(v3.IPPoolSpec{CIDR: cidr, Disabled: disabled})}
	}
	old := mk("old", "192.168.0.0/16", true)
	for _, tc := range []struct {
		name    string
		pools   []calico.Pool
		target  string
		want    string // a problem containing this; "" none
		targets int
	}{
		{"disjoint target", []calico.Pool{old, mk("new", "10.0.0.0/16", false)}, "new", "", 1},
		{"target inside the old pool", []calico.Pool{old, mk("inner", "192.168.10.0/24", false)}, "inner", "target pool inner (192.168.10.0/24) overlaps pool old (192.168.0.0/16)", 0},
		{"no target given: an overlapping pool is not a target", []calico.Pool{old, mk("inner", "192.168.10.0/24", false), mk("new", "10.0.0.0/16", false)}, "",
			"enabled pool inner (192.168.10.0/24) overlaps pool old", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal := &fakeCalico{live: &staticReader{pools: tc.pools}}
			r, err := resolvePools(context.Background(), cal, podMoveInput{pool: "old", targetPool: tc.target})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(r.problems, "; ")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
			if len(r.targets) != tc.targets {
				t.Errorf("%d target(s), want %d", len(r.targets), tc.targets)
			}
		})
	}
}
