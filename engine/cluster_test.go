package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
	"github.com/runbookdev/runbook/internal/exitcode"
)

var (
	clusterA = engine.ClusterIdentity{KubeSystemUID: "uid-a", Server: "https://staging:6443"}
	clusterB = engine.ClusterIdentity{KubeSystemUID: "uid-b", Server: "https://prod:6443"}
)

// Issue #15 item 6: a saved plan is bound to its cluster and has a maximum age.
func TestCheckPlanCluster(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		plan    engine.Plan
		cluster engine.ClusterIdentity
		maxAge  time.Duration
		want    string // "" accepted
	}{
		{"same cluster, fresh", engine.Plan{Cluster: clusterA, CreatedAt: now.Add(-time.Hour)}, clusterA, 24 * time.Hour, ""},
		{"another cluster", engine.Plan{Cluster: clusterA, CreatedAt: now}, clusterB, 0,
			"made on https://staging:6443 (kube-system uid uid-a), but this is https://prod:6443 (kube-system uid uid-b)"},
		{"same cluster by another URL", engine.Plan{Cluster: clusterA, CreatedAt: now},
			engine.ClusterIdentity{KubeSystemUID: "uid-a", Server: "https://lb:443"}, 0, ""},
		{"a plan that does not say", engine.Plan{CreatedAt: now}, clusterA, 0, "does not say which cluster"},
		{"too old", engine.Plan{Cluster: clusterA, CreatedAt: now.Add(-25 * time.Hour)}, clusterA, 24 * time.Hour, "older than --plan-max-age 24h0m0s"},
		{"any age allowed", engine.Plan{Cluster: clusterA, CreatedAt: now.Add(-900 * time.Hour)}, clusterA, 0, ""},
		{"from the future", engine.Plan{Cluster: clusterA, CreatedAt: now.Add(time.Hour)}, clusterA, 24 * time.Hour, "in the future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := engine.CheckPlanCluster(&tc.plan, tc.cluster, now, tc.maxAge)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitcode.Of(err) != exitcode.PlanDrift {
				t.Fatalf("got %v (exit %d), want exit %d saying %q", err, exitcode.Of(err), exitcode.PlanDrift, tc.want)
			}
		})
	}
}

// A journal (a --state file) of an unfinished run on one cluster is not resumed
// on another.
func TestJournalOfAnotherClusterIsRefused(t *testing.T) {
	f := newFixture(t)
	_, err := f.run(threeSteps, func(o *engine.Options, a *enginetest.ConfigMapAction) { o.Cluster = clusterA; a.StopOn = "b" })
	if exitcode.Of(err) != exitcode.Interrupted {
		t.Fatalf("first run: %v", err)
	}
	j, _, err := f.store.Load(t.Context())
	if err != nil || j.Cluster == nil || *j.Cluster != clusterA {
		t.Fatalf("journal cluster %+v, %v; want %v", j.Cluster, err, clusterA)
	}
	_, err = f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Cluster = clusterB })
	if exitcode.Of(err) != exitcode.PlanDrift || !strings.Contains(err.Error(), "uid-a") || !strings.Contains(err.Error(), "uid-b") {
		t.Fatalf("resume on another cluster: %v (exit %d), want exit %d naming both", err, exitcode.Of(err), exitcode.PlanDrift)
	}
	if _, err := f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Cluster = clusterA }); err != nil {
		t.Fatalf("resume on its own cluster: %v", err)
	}
}
