package scenarios

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Validate reports every problem of a defaulted scenario at once, each prefixed
// with the path of the offending field.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}

	if s.APIVersion != APIVersion || s.Kind != Kind {
		bad("apiVersion/kind", "want %s %s, got %q %q", APIVersion, Kind, s.APIVersion, s.Kind)
	}
	if s.Name == "" {
		bad("name", "required")
	}

	validatePodSubnet(s.Cluster.PodSubnet, bad)
	if _, err := netip.ParsePrefix(s.Cluster.ServiceSubnet); err != nil {
		bad("cluster.serviceSubnet", "%v", err)
	}

	poolNames := map[string]bool{}
	for i, p := range s.Calico.IPPools {
		path := fmt.Sprintf("calico.ipPools[%d]", i)
		if msgs := validation.IsDNS1123Subdomain(p.Name); len(msgs) > 0 {
			bad(path+".name", "%q: %v", p.Name, msgs)
		}
		if poolNames[p.Name] {
			bad(path+".name", "duplicate pool %q", p.Name)
		}
		poolNames[p.Name] = true
		prefix, err := netip.ParsePrefix(p.CIDR)
		if err != nil {
			bad(path+".cidr", "%v", err)
			continue
		}
		if prefix != prefix.Masked() {
			bad(path+".cidr", "%s is not canonical (want %s)", p.CIDR, prefix.Masked())
		}
		minBlock, maxBlock := 20, 32
		if prefix.Addr().Is6() {
			minBlock, maxBlock = 116, 128
		}
		if p.BlockSize < minBlock || p.BlockSize > maxBlock || p.BlockSize < prefix.Bits() {
			bad(path+".blockSize", "%d outside %d..%d or larger than the pool", p.BlockSize, max(minBlock, prefix.Bits()), maxBlock)
		}
		for _, m := range []struct{ field, mode string }{{"ipipMode", p.IPIPMode}, {"vxlanMode", p.VXLANMode}} {
			if m.mode != "Never" && m.mode != "Always" && m.mode != "CrossSubnet" {
				bad(path+"."+m.field, "%q is not Never, Always or CrossSubnet", m.mode)
			}
		}
		if p.IPIPMode != "Never" && p.VXLANMode != "Never" {
			bad(path, "ipipMode and vxlanMode cannot both be enabled")
		}
		for _, u := range p.AllowedUses {
			if u != "Workload" && u != "Tunnel" && u != "LoadBalancer" {
				bad(path+".allowedUses", "%q is not Workload, Tunnel or LoadBalancer", u)
			}
		}
	}
	if len(s.Calico.IPPools) == 0 {
		bad("calico.ipPools", "at least one pool is required (calico-node creates one on install)")
	}

	if s.Pods.StartDelay.Duration < 0 {
		bad("pods.startDelay", "must not be negative")
	}
	if s.Pods.ShutdownDelay.Duration < 0 {
		bad("pods.shutdownDelay", "must not be negative")
	}

	nodeNames := map[string]bool{}
	controlPlanes := 0
	for i, g := range s.NodeGroups {
		if g.Count < 1 {
			bad(fmt.Sprintf("nodes[%d].count", i), "must be at least 1")
		}
		if g.ControlPlane {
			controlPlanes++
		}
	}
	for _, n := range s.Nodes() {
		if msgs := validation.IsDNS1123Subdomain(n.Name); len(msgs) > 0 {
			bad("nodes", "node name %q: %v", n.Name, msgs)
		}
		if nodeNames[n.Name] {
			bad("nodes", "duplicate node %q", n.Name)
		}
		nodeNames[n.Name] = true
	}
	if controlPlanes == 0 {
		bad("nodes", "one entry must have controlPlane: true (it hosts the control plane's mirror pods)")
	}

	for i, ns := range s.Namespaces {
		if msgs := validation.IsDNS1123Label(ns.Name); len(msgs) > 0 {
			bad(fmt.Sprintf("namespaces[%d].name", i), "%q: %v", ns.Name, msgs)
		}
	}

	workloadKeys := map[string]bool{}
	pdbKeys := map[string]bool{}
	for i, w := range s.Workloads {
		path := fmt.Sprintf("workloads[%d]", i)
		validateWorkload(w, path, bad)
		key := w.Namespace + "/" + w.Name
		if workloadKeys[key] {
			bad(path, "duplicate workload %s", key)
		}
		workloadKeys[key] = true
		for _, p := range w.AllPDBs() {
			pdbKey := w.Namespace + "/" + p.Name
			if pdbKeys[pdbKey] {
				bad(path, "duplicate PodDisruptionBudget %s", pdbKey)
			}
			pdbKeys[pdbKey] = true
		}
	}
	return errors.Join(errs...)
}

func isIPv6CIDR(cidr string) bool {
	p, err := netip.ParsePrefix(cidr)
	return err == nil && p.Addr().Is6()
}

// validatePodSubnet accepts what kubeadm accepts: one CIDR, or an IPv4 and an
// IPv6 CIDR separated by a comma.
func validatePodSubnet(subnet string, bad func(path, format string, args ...any)) {
	parts := strings.Split(subnet, ",")
	if len(parts) > 2 {
		bad("cluster.podSubnet", "at most two CIDRs (one IPv4, one IPv6), got %d", len(parts))
		return
	}
	families := map[bool]bool{}
	for _, part := range parts {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			bad("cluster.podSubnet", "%v", err)
			continue
		}
		if families[p.Addr().Is6()] {
			bad("cluster.podSubnet", "two CIDRs must be one IPv4 and one IPv6 (dual-stack)")
		}
		families[p.Addr().Is6()] = true
	}
}

var workloadKinds = []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindPod}

func validateWorkload(w Workload, path string, bad func(path, format string, args ...any)) {
	if !slices.Contains(workloadKinds, w.Kind) {
		bad(path+".kind", "%q is not one of %s", w.Kind, strings.Join(workloadKinds, ", "))
	}
	if msgs := validation.IsDNS1123Label(w.Namespace); len(msgs) > 0 {
		bad(path+".namespace", "%q: %v", w.Namespace, msgs)
	}
	if msgs := validation.IsDNS1123Subdomain(w.Name); len(msgs) > 0 {
		bad(path+".name", "%q: %v", w.Name, msgs)
	}
	if w.Count > 1 {
		bad(path+".count", "copies need labels of their own; leave labels out (each copy gets app: <name>-<i>)")
	}
	switch {
	case w.Replicas < 0:
		bad(path+".replicas", "must not be negative")
	case w.Kind == KindDaemonSet && w.Replicas != 0:
		bad(path+".replicas", "a DaemonSet runs one pod per node; leave replicas out")
	}
	if w.StartDelay != nil && w.StartDelay.Duration < 0 {
		bad(path+".startDelay", "must not be negative")
	}
	if w.ShutdownDelay != nil && w.ShutdownDelay.Duration < 0 {
		bad(path+".shutdownDelay", "must not be negative")
	}
	if g := w.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		bad(path+".terminationGracePeriodSeconds", "must not be negative")
	}
	if d := w.ReadinessDelay; d != nil && (d.Duration <= 0 || d.Duration%time.Second != 0) {
		bad(path+".readinessDelay", "%v: a readiness probe's initialDelaySeconds is a positive number of whole seconds", d.Duration)
	}
	if w.RunFor != nil && (w.Kind != KindJob || w.RunFor.Duration < 0) {
		bad(path+".runFor", "only for Jobs, and not negative")
	}
	switch w.Fault {
	case "", FaultNeverReady, FaultCrashLoop:
	default:
		bad(path+".fault", "%q is not %s or %s", w.Fault, FaultNeverReady, FaultCrashLoop)
	}
	if _, ok := w.Annotations["cni.projectcalico.org/ipv4pools"]; ok && len(w.IPv4Pools) > 0 {
		bad(path+".ipv4Pools", "also set as annotation cni.projectcalico.org/ipv4pools; set one")
	}
	if _, ok := w.Annotations["cni.projectcalico.org/ipv6pools"]; ok && len(w.IPv6Pools) > 0 {
		bad(path+".ipv6Pools", "also set as annotation cni.projectcalico.org/ipv6pools; set one")
	}
	if w.PDB != nil {
		if w.PDB.Name != "" {
			bad(path+".pdb.name", "pdb is named after the workload; use pdbs for named budgets")
		}
		validatePDB(*w.PDB, path+".pdb", bad)
	}
	for j, p := range w.PDBs {
		pdbPath := fmt.Sprintf("%s.pdbs[%d]", path, j)
		if msgs := validation.IsDNS1123Subdomain(p.Name); len(msgs) > 0 {
			bad(pdbPath+".name", "%q: %v", p.Name, msgs)
		}
		validatePDB(p, pdbPath, bad)
	}
	if w.Webhook != nil {
		switch w.Webhook.FailurePolicy {
		case "Fail", "Ignore":
		default:
			bad(path+".webhook.failurePolicy", "%q is not Fail or Ignore", w.Webhook.FailurePolicy)
		}
		if w.HostNetwork {
			bad(path+".webhook", "webhook backends on the host network would not be pods in a pool")
		}
	}
}

func validatePDB(p PDB, path string, bad func(path, format string, args ...any)) {
	if (p.MinAvailable == nil) == (p.MaxUnavailable == nil) {
		bad(path, "set exactly one of minAvailable and maxUnavailable")
	}
	switch p.UnhealthyPodEvictionPolicy {
	case "", "IfHealthyBudget", "AlwaysAllow":
	default:
		bad(path+".unhealthyPodEvictionPolicy", "%q is not IfHealthyBudget or AlwaysAllow", p.UnhealthyPodEvictionPolicy)
	}
}
