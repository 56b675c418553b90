package scenarios

import (
	"errors"
	"fmt"
	"net/netip"

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

	if _, err := netip.ParsePrefix(s.Cluster.PodSubnet); err != nil {
		bad("cluster.podSubnet", "%v", err)
	}
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
	}
	if len(s.Calico.IPPools) == 0 {
		bad("calico.ipPools", "at least one pool is required (calico-node creates one on install)")
	}

	if s.Pods.StartDelay.Duration < 0 {
		bad("pods.startDelay", "must not be negative")
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
	for i, w := range s.Workloads {
		path := fmt.Sprintf("workloads[%d]", i)
		if w.Kind != "Deployment" {
			bad(path+".kind", "%q is not supported (only Deployment)", w.Kind)
		}
		if msgs := validation.IsDNS1123Label(w.Namespace); len(msgs) > 0 {
			bad(path+".namespace", "%q: %v", w.Namespace, msgs)
		}
		if msgs := validation.IsDNS1123Subdomain(w.Name); len(msgs) > 0 {
			bad(path+".name", "%q: %v", w.Name, msgs)
		}
		key := w.Namespace + "/" + w.Name
		if workloadKeys[key] {
			bad(path, "duplicate workload %s", key)
		}
		workloadKeys[key] = true
		if w.Replicas < 0 {
			bad(path+".replicas", "must not be negative")
		}
		if w.PDB != nil {
			if (w.PDB.MinAvailable == nil) == (w.PDB.MaxUnavailable == nil) {
				bad(path+".pdb", "set exactly one of minAvailable and maxUnavailable")
			}
			switch w.PDB.UnhealthyPodEvictionPolicy {
			case "", "IfHealthyBudget", "AlwaysAllow":
			default:
				bad(path+".pdb.unhealthyPodEvictionPolicy", "%q is not IfHealthyBudget or AlwaysAllow", w.PDB.UnhealthyPodEvictionPolicy)
			}
		}
	}
	return errors.Join(errs...)
}

func isIPv6CIDR(cidr string) bool {
	p, err := netip.ParsePrefix(cidr)
	return err == nil && p.Addr().Is6()
}
