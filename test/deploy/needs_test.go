package deploy

import (
	"slices"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/access"
	"github.com/runbookdev/runbook/runbooks"
)

// declaredNeeds is the union of what the action registry and the frame around it
// (engine, CLI) declare for every Calico flavour, in the rule keys of the
// manifests, with the journal namespace deploy/rbac.yaml uses; and, per key, the
// flavours declaring it (decl.AllFlavours for a call every cluster makes).
func declaredNeeds() (ruleSet, map[ruleKey][]decl.Flavour) {
	set, flavours := ruleSet{}, map[ruleKey][]decl.Flavour{}
	add := func(ps []decl.Permission) {
		for _, p := range ps {
			ns := p.Namespace
			if ns == decl.JournalNamespace {
				ns = "runbook-system"
			}
			names := p.Names
			if len(names) == 0 {
				names = []string{""}
			}
			for _, v := range p.Verbs {
				for _, n := range names {
					k := ruleKey{Scope: ns, Group: p.Group, Resource: p.Resource, Verb: v, Name: n}
					set[k] = true
					if !slices.Contains(flavours[k], p.Flavour) {
						flavours[k] = append(flavours[k], p.Flavour)
					}
				}
			}
		}
	}
	for _, d := range actions.Default.Actions() {
		add(d.Needs)
	}
	f := actions.FrameNeeds
	for _, ps := range [][]decl.Permission{f.Bind, f.Plan, f.Run, f.Runs, f.Unlock} {
		add(ps)
	}
	return set, flavours
}

// onlyFor reports whether every declaration of k is scoped to a flavour not in
// fs: no code path makes that call on a cluster of flavours fs.
func onlyFor(declared []decl.Flavour, fs ...decl.Flavour) bool {
	if len(declared) == 0 {
		return false
	}
	for _, f := range declared {
		if f == decl.AllFlavours || slices.Contains(fs, f) {
			return false
		}
	}
	return true
}

// TestRBACMatchesDeclaredNeeds keeps deploy/rbac.yaml and the declarations the
// permissions preflight checks one source of truth: every declared need of every
// Calico flavour is granted (or the preflight would pass where the Job fails), and
// every grant is declared (or the ServiceAccount holds a permission nothing
// claims). Then, per flavour, what the preflight asks a cluster of that flavour
// for the example migration is granted, and nothing of another pool API is asked.
func TestRBACMatchesDeclaredNeeds(t *testing.T) {
	granted := loadRules(t, "../../deploy/rbac.yaml", "runbook-system", "runbook")
	declared, flavours := declaredNeeds()
	var notGranted, notDeclared []string
	for _, k := range declared.keys() {
		if !granted[k] {
			notGranted = append(notGranted, k.String())
		}
	}
	for _, k := range granted.keys() {
		if !declared[k] {
			notDeclared = append(notDeclared, k.String())
		}
	}
	if len(notGranted) > 0 {
		t.Errorf("declared in actions (Decl.Needs, FrameNeeds) but not granted by deploy/rbac.yaml:\n  %s", strings.Join(notGranted, "\n  "))
	}
	if len(notDeclared) > 0 {
		t.Errorf("granted by deploy/rbac.yaml but declared by no action or command:\n  %s", strings.Join(notDeclared, "\n  "))
	}
	if len(declared) == 0 {
		t.Fatal("no permission declared at all")
	}
	perFlavour := map[decl.Flavour]int{}
	for _, fs := range flavours {
		for _, f := range fs {
			perFlavour[f]++
		}
	}
	t.Logf("%d permissions declared and granted: %d on every cluster, %d crd, %d v3, %d operator", len(declared),
		perFlavour[decl.AllFlavours], perFlavour[decl.FlavourCRD], perFlavour[decl.FlavourV3], perFlavour[decl.FlavourOperator])

	rb, err := runbooks.ParseFile("../../examples/migrate-ippool/runbook.yaml", actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		flavours []decl.Flavour
		// neverGroup: an API group a cluster of these flavours must not be asked about.
		neverGroup string
	}{
		{"manifest install", []decl.Flavour{decl.FlavourCRD}, "projectcalico.org"},
		{"Calico API server", []decl.Flavour{decl.FlavourV3}, "crd.projectcalico.org/ippools"},
		{"operator install", []decl.Flavour{decl.FlavourV3, decl.FlavourOperator}, "crd.projectcalico.org/ippools"},
		{"operator install, --calico-api crd", []decl.Flavour{decl.FlavourCRD, decl.FlavourOperator}, "projectcalico.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needs := access.Needs(rb, access.Options{JournalNamespace: "runbook-system", Flavours: tc.flavours})
			for _, n := range needs {
				k := ruleKey{Scope: n.Namespace, Group: n.Group, Resource: n.Resource, Verb: n.Verb, Name: n.Name}
				if !granted.grants(k) {
					t.Errorf("the preflight asks for %s, which deploy/rbac.yaml does not grant", n)
				}
				if g := n.Group + "/" + n.Resource; g == tc.neverGroup || n.Group == tc.neverGroup {
					t.Errorf("a cluster of flavours %v is asked for %s", tc.flavours, n)
				}
			}
			t.Logf("%d permissions asked", len(needs))
		})
	}
}
