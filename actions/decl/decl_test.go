package decl

import "testing"

// Every role explains itself: runbook explain prints Describe, and a role
// added without a description would print its bare name.
func TestEveryPoolRoleIsDescribed(t *testing.T) {
	seen := map[string]PoolRole{}
	for _, r := range PoolRoles {
		d := r.Describe()
		if d == string(r) || d == "" {
			t.Errorf("pool role %q has no description", r)
		}
		if other, dup := seen[d]; dup {
			t.Errorf("pool roles %q and %q share the description %q", r, other, d)
		}
		seen[d] = r
		if r.Leaves() && r.Enters() {
			t.Errorf("pool role %q both leaves and enters its pool", r)
		}
	}
}
