package actions

import (
	"slices"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
)

// TestEveryActionDeclaresItsNeeds: the permissions preflight can only check what is
// declared, so a built-in action without Needs (even an empty list, like pause's)
// is a mistake, as is a permission that cannot be checked.
func TestEveryActionDeclaresItsNeeds(t *testing.T) {
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	check := func(where string, ps []decl.Permission) {
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
				// RBAC resourceNames cannot restrict these: a named list would be
				// checked by the preflight and never granted. (A watch can be: the
				// apiserver authorizes one that selects metadata.name by that name,
				// which is how engine/lock.go watches the run lock.)
				if len(p.Names) > 0 && slices.Contains([]string{"list", "create"}, v) {
					t.Errorf("%s: %s: %s cannot be restricted to names %v", where, p.Resource, v, p.Names)
				}
			}
			if p.Flavour != decl.AllFlavours && !slices.Contains(decl.Flavours, p.Flavour) {
				t.Errorf("%s: %s: unknown flavour %q", where, p.Resource, p.Flavour)
			}
		}
	}
	for _, d := range Default.Actions() {
		if d.Needs == nil {
			t.Errorf("action %s: declares no Needs (an action that calls no API declares an empty list)", d.Name)
		}
		check("action "+d.Name, d.Needs)
	}
	f := FrameNeeds
	for where, ps := range map[string][]decl.Permission{"Bind": f.Bind, "Plan": f.Plan, "Run": f.Run, "Runs": f.Runs, "Unlock": f.Unlock} {
		if len(ps) == 0 {
			t.Errorf("FrameNeeds.%s is empty", where)
		}
		check("FrameNeeds."+where, ps)
	}
}

// TestFlavoursOf: the pool API chosen decides between the crd and v3 needs (never
// both), the operator's Installation API adds the operator path's.
func TestFlavoursOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		det  calico.Detection
		want []decl.Flavour
	}{
		{"manifest install", calico.Detection{Flavour: calico.FlavourCRD, V1: true}, []decl.Flavour{decl.FlavourCRD}},
		{"Calico API server", calico.Detection{Flavour: calico.FlavourV3, V1: true, V3: calico.V3APIServer}, []decl.Flavour{decl.FlavourV3}},
		{"v3 registered but down: v1 chosen", calico.Detection{Flavour: calico.FlavourCRD, V1: true, V3: calico.V3APIServer, V3Unavailable: "503"}, []decl.Flavour{decl.FlavourCRD}},
		{"operator install", calico.Detection{Flavour: calico.FlavourV3, V1: true, V3: calico.V3APIServer, Operator: true}, []decl.Flavour{decl.FlavourV3, decl.FlavourOperator}},
		{"operator with --calico-api crd", calico.Detection{Flavour: calico.FlavourCRD, V1: true, Operator: true}, []decl.Flavour{decl.FlavourCRD, decl.FlavourOperator}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FlavoursOf(tc.det); !slices.Equal(got, tc.want) {
				t.Fatalf("FlavoursOf = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPoolNeedsPerFlavour: every pool permission exists once per pool API, with
// the same verbs, so no flavour can miss a verb the other has; and only the v3
// one names projectcalico.org.
func TestPoolNeedsPerFlavour(t *testing.T) {
	lists := map[string][]decl.Permission{"FrameNeeds.Bind": FrameNeeds.Bind}
	for _, d := range Default.Actions() {
		lists["action "+d.Name] = d.Needs
	}
	for where, ps := range lists {
		verbs := map[decl.Flavour][]string{}
		for _, p := range ps {
			if p.Resource != "ippools" {
				continue
			}
			switch {
			case p.Group == "crd.projectcalico.org" && p.Flavour == decl.FlavourCRD, p.Group == "projectcalico.org" && p.Flavour == decl.FlavourV3:
				verbs[p.Flavour] = append(verbs[p.Flavour], p.Verbs...)
			default:
				t.Errorf("%s: %s/ippools declared for flavour %q", where, p.Group, p.Flavour)
			}
		}
		if c, v := strings.Join(verbs[decl.FlavourCRD], ","), strings.Join(verbs[decl.FlavourV3], ","); c != v {
			t.Errorf("%s: ippools verbs differ per flavour: crd %s, v3 %s", where, c, v)
		}
	}
}
