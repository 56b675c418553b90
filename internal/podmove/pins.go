package podmove

import (
	"encoding/json"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Calico's pool pins (pitfall 2): a pod's annotation wins over its namespace's, as
// in the CNI plugin. Values are JSON lists of pool names or CIDRs.
const (
	annotationIPv4Pools = "cni.projectcalico.org/ipv4pools"
	annotationIPv6Pools = "cni.projectcalico.org/ipv6pools"
)

// annotationPodIPs is where Calico's CNI plugin records a pod's addresses the
// moment CNI ADD has assigned them (libcalico-go's k8s conversion reads it back).
// The kubelet reports status.podIPs only later, once the sandbox is up and its
// status sync runs: a pod with this annotation no longer waits on its node's CNI,
// whatever its status says yet.
const annotationPodIPs = "cni.projectcalico.org/podIPs"

// pinAnnotation is the pin that applies to pods of the pool's family.
func pinAnnotation(pool Pool) string {
	if pool.CIDR.Addr().Is6() {
		return annotationIPv6Pools
	}
	return annotationIPv4Pools
}

// pinRefusal says why a pod's replacement would be pinned to the old pool, or "".
// Such a replacement gets no address while the pool is disabled ("the given pool
// ... does not exist, or is not enabled") and lands back in it if it is re-enabled.
// nsAnnotations are the pod's namespace's annotations.
func pinRefusal(p *corev1.Pod, nsAnnotations map[string]string, pool Pool) string {
	key := pinAnnotation(pool)
	where, value := "", ""
	if v, ok := p.Annotations[key]; ok {
		where, value = "pod", v
	} else if v, ok := nsAnnotations[key]; ok {
		where, value = "namespace", v
	}
	if where == "" || !pinsPool(value, pool) {
		return ""
	}
	return "pods pinned to pool " + pool.Name + " by the " + key + " annotation of their " + where +
		" (replacements would get no address while it is disabled: point the annotation at the target pool)"
}

// pinsPool reports whether a pin lists the pool, by name or by a CIDR inside it.
// A pin that does not parse is Calico's problem to report; it is not matched.
func pinsPool(value string, pool Pool) bool {
	var entries []string
	if err := json.Unmarshal([]byte(value), &entries); err != nil {
		return false
	}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == pool.Name {
			return true
		}
		if pfx, err := netip.ParsePrefix(e); err == nil && pfx.Overlaps(pool.CIDR) {
			return true
		}
	}
	return false
}
