package podmove

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Pod template annotations of a rollout restart. restartedAt is kubectl's own, so
// `kubectl rollout history` and GitOps tools see what they know; restartedBy says
// which run and step did it, so a resumed step does not restart the owner again.
const (
	annotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
	annotationRestartedBy = "runbook.dev/restarted-by"
)

// restartRefusal says why `kubectl rollout restart` would not recreate the owner's
// pods, or "" when it would.
func restartRefusal(o Owner, w Workloads) string {
	switch o.Kind {
	case KindDeployment:
		d, ok := w.Deployment(o.Namespace, o.Name)
		if !ok {
			return o.String() + " is not known yet"
		}
		if d.Spec.Paused {
			return "paused Deployments (a rollout restart does nothing until resumed)"
		}
		return ""
	case KindStatefulSet:
		s, ok := w.StatefulSet(o.Namespace, o.Name)
		if !ok {
			return o.String() + " is not known yet"
		}
		if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return "StatefulSets with updateStrategy OnDelete (a rollout restart recreates no pod)"
		}
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
			return "StatefulSets with a rollingUpdate partition (pods below it are not restarted)"
		}
		return ""
	case KindDaemonSet:
		d, ok := w.DaemonSet(o.Namespace, o.Name)
		if !ok {
			return o.String() + " is not known yet"
		}
		if d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return "DaemonSets with updateStrategy OnDelete (a rollout restart recreates no pod)"
		}
		return ""
	case KindReplicaSet:
		return "ReplicaSets without a Deployment (there is no rollout to restart: use strategy evict)"
	}
	return o.Kind + " owners (runbook cannot restart them: use strategy evict)"
}

// canSurge: a restart of this Deployment starts the new pod before the old one
// goes, which is what singleReplica: rolloutRestart is for.
func canSurge(o Owner, w Workloads) bool {
	if o.Kind != KindDeployment {
		return false
	}
	d, ok := w.Deployment(o.Namespace, o.Name)
	if !ok || d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return false
	}
	surge := intstr.FromString("25%") // the API's default
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
		surge = *ru.MaxSurge
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&surge, replicas(d.Spec.Replicas), true)
	return err == nil && n > 0
}

// restartMarkOf reads who last restarted the owner through runbook.
func restartMarkOf(o Owner, w Workloads) string {
	switch o.Kind {
	case KindDeployment:
		if d, ok := w.Deployment(o.Namespace, o.Name); ok {
			return d.Spec.Template.Annotations[annotationRestartedBy]
		}
	case KindStatefulSet:
		if s, ok := w.StatefulSet(o.Namespace, o.Name); ok {
			return s.Spec.Template.Annotations[annotationRestartedBy]
		}
	case KindDaemonSet:
		if d, ok := w.DaemonSet(o.Namespace, o.Name); ok {
			return d.Spec.Template.Annotations[annotationRestartedBy]
		}
	}
	return ""
}

// restartsDue chooses the owners to restart now: those with pods to move by a
// restart that this step has not restarted yet, as long as the replicas of the
// owners restarting stay within limit (one owner at least, however big).
func restartsDue(w *world, restarted func(Owner) bool, limit int) (due []Owner, waiting []Owner) {
	busy := 0
	var todo []Owner
	for o := range w.restarts {
		if restarted(o) {
			busy += max(1, desiredOf(w, o))
			continue
		}
		todo = append(todo, o)
	}
	for _, o := range w.owners {
		if o.touched && !o.satisfied() && w.restarts[o.Owner] == nil && restarted(o.Owner) {
			busy += max(1, o.desired) // restarted, pods out of the old pool, not all back yet
		}
	}
	sortOwners(todo)
	for _, o := range todo {
		n := max(1, desiredOf(w, o))
		if busy > 0 && busy+n > limit {
			waiting = append(waiting, o)
			continue
		}
		busy += n
		due = append(due, o)
	}
	return due, waiting
}

func sortOwners(os []Owner) {
	sort.Slice(os, func(i, j int) bool { return ownerLess(os[i], os[j]) })
}

// restartPatch is the merge patch of `kubectl rollout restart`, plus the mark.
func restartPatch(mark string, now time.Time) ([]byte, error) {
	b, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{annotationRestartedAt: now.UTC().Format(time.RFC3339), annotationRestartedBy: mark}}}}})
	if err != nil {
		return nil, fmt.Errorf("restart patch: %w", err)
	}
	return b, nil
}

func desiredOf(w *world, o Owner) int {
	if os := w.owners[o]; os != nil {
		return os.desired
	}
	return 1
}
