package actions

import (
	"fmt"
	"hash/fnv"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/runbookdev/runbook/internal/calico"
)

// zoneLabel groups nodes when assertNewAllocations samples a big cluster.
const zoneLabel = "topology.kubernetes.io/zone"

// probeLabel marks the test pods (besides the run id label).
const probeLabel = "app.kubernetes.io/name"

// pickNodes selects the nodes to put a test pod on: Ready, schedulable nodes with
// the given labels, selected by the pool's nodeSelector (others can never get an
// address from it), whose NoSchedule/NoExecute taints the pods tolerate. At most max
// nodes, taken round-robin across zones (sorted by name within a zone), so a
// sample of a big cluster still covers every zone. skipped explains the rest.
func pickNodes(nodes []calico.Node, pool *calico.Pool, labels map[string]string, tolerations []corev1.Toleration, max int) (picked []calico.Node, skipped []string) {
	zones := map[string][]calico.Node{}
	for _, n := range nodes {
		if why := unfit(n, pool, labels, tolerations); why != "" {
			skipped = append(skipped, n.Name+": "+why)
			continue
		}
		zones[n.Labels[zoneLabel]] = append(zones[n.Labels[zoneLabel]], n)
	}
	names := make([]string, 0, len(zones))
	for z, ns := range zones {
		names = append(names, z)
		sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
	}
	sort.Strings(names)
	for round := 0; len(picked) < max; round++ {
		added := false
		for _, z := range names {
			if round < len(zones[z]) && len(picked) < max {
				picked = append(picked, zones[z][round])
				added = true
			}
		}
		if !added {
			break
		}
	}
	sort.Slice(picked, func(i, j int) bool { return picked[i].Name < picked[j].Name })
	sort.Strings(skipped)
	return picked, skipped
}

// unfit says why a test pod cannot (or must not) run on a node, or "".
func unfit(n calico.Node, pool *calico.Pool, labels map[string]string, tolerations []corev1.Toleration) string {
	if !n.Ready {
		return "not Ready"
	}
	if n.Unschedulable {
		return "cordoned"
	}
	for k, v := range labels {
		if n.Labels[k] != v {
			return fmt.Sprintf("label %s is not %q", k, v)
		}
	}
	if ok, err := calico.SelectsNode(pool.Spec.NodeSelector, n.Labels); err != nil || !ok {
		return fmt.Sprintf("not selected by pool %s (nodeSelector %s)", pool.Name, pool.Spec.NodeSelector)
	}
	for i := range n.Taints {
		t := &n.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		tolerated := false
		for j := range tolerations {
			// Lt/Gt tolerations (a feature gate) are not assumed: a node they
			// would tolerate is skipped, never a pod left Pending.
			tolerated = tolerated || tolerations[j].ToleratesTaint(klog.Background(), t, false)
		}
		if !tolerated {
			return fmt.Sprintf("taint %s=%s:%s is not tolerated", t.Key, t.Value, t.Effect)
		}
	}
	return ""
}

// probePodName is the test pod's name for a node: readable when the node's name
// allows, otherwise a hash (a pod name is at most 253 characters).
func probePodName(node string) string {
	if len(node) <= 57 {
		return "probe-" + node
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(node))
	return fmt.Sprintf("probe-%016x", h.Sum64())
}

// probePod is a pause pod pinned to one node. It goes through the scheduler (node
// affinity on the node's name, as the DaemonSet controller pins its pods) rather than
// spec.nodeName, so taints, admission and quota apply as for any new pod. Nothing
// pins a pool: the point is to see which pool IPAM picks by itself.
func probePod(in probeInput, runID, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: probePodName(node), Namespace: in.namespace,
			Labels: map[string]string{calico.LabelRunID: runID, probeLabel: "runbook-ippool-probe", calico.LabelManagedBy: "runbook"},
		},
		Spec: corev1.PodSpec{
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
				}}},
			}},
			Tolerations:                   in.tolerations,
			SecurityContext:               in.securityContext,
			ImagePullSecrets:              in.pullSecrets,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			RestartPolicy:                 corev1.RestartPolicyNever,
			Containers:                    []corev1.Container{{Name: "probe", Image: in.image}},
		},
	}
}
