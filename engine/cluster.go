package engine

import (
	"fmt"
	"time"

	"github.com/runbookdev/runbook/internal/exitcode"
)

// ClusterIdentity says which cluster a plan was made on and a run ran on. The
// kube-system namespace's UID is the identity (it lives as long as the cluster
// and a new cluster never repeats it); the server URL is what a reader
// recognises (one cluster may be reached by several).
type ClusterIdentity struct {
	KubeSystemUID string `json:"kubeSystemUID"`
	Server        string `json:"server"`
}

// Known reports whether the identity was read.
func (c ClusterIdentity) Known() bool { return c.KubeSystemUID != "" }

func (c ClusterIdentity) String() string {
	if !c.Known() {
		return "an unrecorded cluster"
	}
	return fmt.Sprintf("%s (kube-system uid %s)", c.Server, c.KubeSystemUID)
}

// sameCluster refuses (exit 10) when what (a saved plan, a run's journal) was
// made on another cluster than the one connected to now.
func sameCluster(what string, made, now ClusterIdentity) error {
	if !now.Known() || made.KubeSystemUID == now.KubeSystemUID {
		return nil
	}
	if !made.Known() {
		return exitcode.Newf(exitcode.PlanDrift, "%s does not say which cluster it was made on; this is %s: plan again", what, now)
	}
	return exitcode.Newf(exitcode.PlanDrift, "%s was made on %s, but this is %s: wrong --context or kubeconfig?", what, made, now)
}

// DefaultPlanMaxAge is how old a saved plan apply accepts by default: the cluster
// drifts in ways facts do not show, so a plan reviewed yesterday is not one to
// apply next week.
const DefaultPlanMaxAge = 24 * time.Hour

// planClockSkew tolerates a plan made on a machine whose clock is a little ahead.
const planClockSkew = 5 * time.Minute

// CheckPlanCluster refuses a saved plan made on another cluster, older than
// maxAge (0: no limit) or made in the future (a clock that is wrong).
func CheckPlanCluster(saved *Plan, now ClusterIdentity, at time.Time, maxAge time.Duration) error {
	if err := sameCluster("the saved plan", saved.Cluster, now); err != nil {
		return err
	}
	age := at.Sub(saved.CreatedAt)
	switch {
	case age < -planClockSkew:
		return exitcode.Newf(exitcode.PlanDrift, "the saved plan was made %s in the future (%s): is a clock wrong? plan again", (-age).Round(time.Second), saved.CreatedAt.Format(time.RFC3339))
	case maxAge > 0 && age > maxAge:
		return exitcode.Newf(exitcode.PlanDrift, "the saved plan is %s old (made %s), older than --plan-max-age %s: plan again and review", age.Round(time.Minute), saved.CreatedAt.Format(time.RFC3339), maxAge)
	}
	return nil
}
