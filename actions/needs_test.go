package actions

import (
	"slices"
	"testing"
)

// TestEveryActionDeclaresItsNeeds: the permissions preflight can only check what is
// declared, so a built-in action without an entry in actionNeeds (even an empty
// one, like pause) is a mistake, as is a permission that cannot be checked.
func TestEveryActionDeclaresItsNeeds(t *testing.T) {
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	check := func(where string, ps []Permission) {
		for _, p := range ps {
			switch {
			case p.Resource == "":
				t.Errorf("%s: a permission without a resource: %+v", where, p)
			case len(p.Verbs) == 0:
				t.Errorf("%s: %s without verbs", where, p.Resource)
			case p.Why == "":
				t.Errorf("%s: %s does not say why it is needed", where, p.Resource)
			}
			for _, v := range p.Verbs {
				if !slices.Contains(verbs, v) {
					t.Errorf("%s: %s: unknown verb %q", where, p.Resource, v)
				}
			}
		}
	}
	for _, d := range Default.Actions() {
		if _, ok := actionNeeds[d.Name]; !ok {
			t.Errorf("action %s: no entry in actionNeeds", d.Name)
		}
		check("action "+d.Name, d.Needs)
	}
	for name := range actionNeeds {
		if _, ok := Default.Action(name); !ok {
			t.Errorf("actionNeeds: %s is not a registered action", name)
		}
	}
	f := FrameNeeds
	for where, ps := range map[string][]Permission{"Bind": f.Bind, "Plan": f.Plan, "Run": f.Run, "Runs": f.Runs, "Unlock": f.Unlock} {
		if len(ps) == 0 {
			t.Errorf("FrameNeeds.%s is empty", where)
		}
		check("FrameNeeds."+where, ps)
	}
}
