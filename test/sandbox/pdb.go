package sandbox

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/test/scenarios"
)

// pdbs returns the workload's PodDisruptionBudgets (pdb and pdbs). Each selects
// the workload's labels unless it names its own.
func pdbs(w scenarios.Workload) []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for _, b := range w.AllPDBs() {
		selector := b.MatchLabels
		if len(selector) == 0 {
			selector = w.Labels
		}
		p := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: b.Name},
			Spec: policyv1.PodDisruptionBudgetSpec{
				Selector:       &metav1.LabelSelector{MatchLabels: selector},
				MinAvailable:   b.MinAvailable,
				MaxUnavailable: b.MaxUnavailable,
			},
		}
		if b.UnhealthyPodEvictionPolicy != "" {
			policy := policyv1.UnhealthyPodEvictionPolicyType(b.UnhealthyPodEvictionPolicy)
			p.Spec.UnhealthyPodEvictionPolicy = &policy
		}
		out = append(out, p)
	}
	return out
}
