package deploy

import (
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions"
)

// declaredNeeds is the union of what the action registry and the frame around it
// (engine, CLI) declare, in the rule keys of the manifests, with the journal
// namespace deploy/rbac.yaml uses.
func declaredNeeds() ruleSet {
	set := ruleSet{}
	add := func(ps []actions.Permission) {
		for _, p := range ps {
			ns := p.Namespace
			if ns == actions.JournalNamespace {
				ns = "runbook-system"
			}
			for _, v := range p.Verbs {
				set[ruleKey{Scope: ns, Group: p.Group, Resource: p.Resource, Verb: v}] = true
			}
		}
	}
	for _, d := range actions.Default.Actions() {
		add(d.Needs)
	}
	f := actions.FrameNeeds
	for _, ps := range [][]actions.Permission{f.Bind, f.Plan, f.Run, f.Runs, f.Unlock} {
		add(ps)
	}
	return set
}

// TestRBACMatchesDeclaredNeeds keeps deploy/rbac.yaml and the declarations the
// permissions preflight checks one source of truth: every declared need is granted
// (or the preflight would pass where the Job fails), and every grant is declared
// (or the ServiceAccount holds a permission nothing claims).
func TestRBACMatchesDeclaredNeeds(t *testing.T) {
	granted := loadRules(t, "../../deploy/rbac.yaml", "runbook-system", "runbook")
	declared := declaredNeeds()
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
	t.Logf("%d permissions declared and granted", len(declared))
}
