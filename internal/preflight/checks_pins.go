package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/textlist"
)

func init() {
	Register(Check{ID: "pins", Roles: leavingRoles, Run: checkPins})
}

// Calico's pool pins: a pod's annotation wins over its namespace's, which wins over
// the CNI configuration's ipv4_pools/ipv6_pools. Values are JSON lists of pool
// names or CIDRs. ipAddrs asks for exact addresses.
const (
	annotationIPv4Pools = "cni.projectcalico.org/ipv4pools"
	annotationIPv6Pools = "cni.projectcalico.org/ipv6pools"
	annotationIPAddrs   = "cni.projectcalico.org/ipAddrs"
)

func pinKey(f calico.Family) string {
	if f == 6 {
		return annotationIPv6Pools
	}
	return annotationIPv4Pools
}

// pinVerdict judges a pin list against the migration: which old pools it names
// and whether it also names a new pool (then allocation falls through to it once
// the old one is disabled, and the pin is only stale).
func pinVerdict(entries []string, old calico.Pool, m *Migration) (namesOld, namesNew bool) {
	matches := func(e string, p calico.Pool) bool {
		e = strings.TrimSpace(e)
		if e == p.Name {
			return true
		}
		pfx, err := calico.ParseCIDR(e)
		return err == nil && p.CIDR.IsValid() && pfx.Overlaps(p.CIDR)
	}
	for _, e := range entries {
		namesOld = namesOld || matches(e, old)
		for _, n := range m.New {
			namesNew = namesNew || matches(e, n.Pool)
		}
	}
	return namesOld, namesNew
}

func pinFinding(id, subject string, old calico.Pool, namesNew bool, what string) Finding {
	if namesNew {
		return Finding{ID: id, Severity: Warn, Subject: subject,
			Message: fmt.Sprintf("%s names the old pool %s (%s) as well as a new pool: allocation falls through to the new pool once the old one is disabled, but the pin goes stale", what, old.Name, old.CIDR),
			Fix:     "remove the old pool from the list"}
	}
	return Finding{ID: id, Severity: Block, Subject: subject,
		Message: fmt.Sprintf("%s pins addresses to the old pool %s (%s): once it is disabled, new pods there get no address and never start", what, old.Name, old.CIDR),
		Fix:     "point it at the new pool (name or CIDR) before the migration, or remove it"}
}

func checkPins(ctx context.Context, in *Input) ([]Finding, error) {
	m, err := in.Migration(ctx)
	if err != nil {
		return nil, err
	}
	if len(m.Old) == 0 {
		return nil, nil
	}
	nss, err := in.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	pods, err := in.Pods(ctx)
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, old := range m.Old {
		key := pinKey(old.Family())
		for _, ns := range nss {
			if v, ok := ns.Annotations[key]; ok {
				var entries []string
				if json.Unmarshal([]byte(v), &entries) != nil {
					continue // Calico reports a pin that does not parse
				}
				if o, n := pinVerdict(entries, old, m); o {
					out = append(out, pinFinding("pins.namespace", fmt.Sprintf("Namespace %s metadata.annotations[%s]", ns.Name, key), old, n,
						"the namespace annotation "+key))
				}
			}
		}
		// Pods: one finding per kind of pin, naming the first few pods, so a
		// Deployment's 500 pinned replicas are one line.
		byVerdict := map[string][]string{}
		var addrPods []string
		for i := range pods {
			p := &pods[i]
			if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			if v, ok := p.Annotations[key]; ok {
				var entries []string
				if json.Unmarshal([]byte(v), &entries) == nil {
					if o, n := pinVerdict(entries, old, m); o {
						k := "old"
						if n {
							k = "both"
						}
						byVerdict[k] = append(byVerdict[k], p.Namespace+"/"+p.Name)
					}
				}
			}
			if v, ok := p.Annotations[annotationIPAddrs]; ok {
				var addrs []string
				if json.Unmarshal([]byte(v), &addrs) == nil {
					for _, a := range addrs {
						if ip, err := netip.ParseAddr(strings.TrimSpace(a)); err == nil && old.CIDR.Contains(ip) {
							addrPods = append(addrPods, fmt.Sprintf("%s/%s (%s)", p.Namespace, p.Name, ip))
						}
					}
				}
			}
		}
		for _, k := range []string{"old", "both"} {
			if ps := byVerdict[k]; len(ps) > 0 {
				sort.Strings(ps)
				out = append(out, pinFinding("pins.pod", fmt.Sprintf("Pod %s metadata.annotations[%s]", textlist.Capped(ps, listLimit), key), old, k == "both",
					fmt.Sprintf("the pod annotation %s of %d pod(s)", key, len(ps))))
			}
		}
		if len(addrPods) > 0 {
			sort.Strings(addrPods)
			out = append(out, Finding{ID: "pins.ipAddrs", Severity: Block, Subject: fmt.Sprintf("Pod %s metadata.annotations[%s]", textlist.Capped(addrPods, listLimit), annotationIPAddrs),
				Message: fmt.Sprintf("%d pod(s) ask for fixed addresses inside the old pool %s (%s): their replacements cannot get them once it is disabled, and never start", len(addrPods), old.Name, old.CIDR),
				Fix:     "give them addresses in the new pool (change " + annotationIPAddrs + " on their owner's pod template) before the migration"})
		}
		ipam, ok, err := in.calicoCNI(ctx)
		if err != nil {
			return out, err
		}
		if ok {
			list, field := ipam.IPv4Pools, "ipv4_pools"
			if old.Family() == 6 {
				list, field = ipam.IPv6Pools, "ipv6_pools"
			}
			if o, n := pinVerdict(list, old, m); o {
				out = append(out, pinFinding("pins.cni", "ConfigMap kube-system/calico-config data."+cniConfigKey+" ipam."+field, old, n,
					"the CNI configuration's "+field))
			}
		}
	}
	return out, nil
}
