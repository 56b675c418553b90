package sandbox

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runbookdev/runbook/test/scenarios"
)

// The network guard (issue #22). The sandbox has no pod network, yet
// kube-apiserver dials pod-network addresses: an admission webhook's Service
// ClusterIP (the workloads scenario's webhook, which nothing serves), a node's
// kubelet for logs and exec, a pod or Service for the proxy subresources. With no
// kube-proxy, CNI or kubelet on this machine, such a SYN would follow the host's
// default route to wherever that private range is used for real. The guard keeps
// every one of them on the machine, in one of two modes:
//
//   - routes (CAP_NET_ADMIN): an `unreachable` route on the host for every range
//     the cluster hands out addresses from (guardedCIDRs), so such a dial fails at
//     once with EHOSTUNREACH, as on a cluster whose pod network is down. More
//     specific routes (a real node's cali* /32s) still win. Routes are shared by
//     the sandboxes of the host and reference-counted (netguard_routes.go).
//   - egress-proxy (no CAP_NET_ADMIN, SANDBOX_NETWORK_GUARD=egress-proxy, or
//     routes that would cut the host off something it uses): no host routes;
//     kube-apiserver's egress selector sends all its cluster and control-plane
//     traffic through an in-process proxy that connects to loopback only and
//     refuses everything else (netguard_egress.go). The cluster's objects are the
//     same in both modes.
//
// Every other component dials only the apiserver on loopback (dialtargets.go
// lists what each is configured to dial; its tests check every entry).

// NetworkGuardEnv selects the guard's mode: "auto" (default: routes when
// possible, else egress-proxy), "routes" (fail when routes are not possible) or
// "egress-proxy" (never touch the host's routes).
const NetworkGuardEnv = "SANDBOX_NETWORK_GUARD"

// The network guard's modes (NetworkGuard.Mode).
const (
	GuardRoutes      = "routes"
	GuardEgressProxy = "egress-proxy"
)

// NetworkGuard says how a cluster keeps its traffic on this machine.
type NetworkGuard struct {
	// Mode is GuardRoutes or GuardEgressProxy.
	Mode string
	// CIDRs are the ranges the cluster's addresses come from: the scenario's and
	// the flavour's pools, the pod subnet(s), the Service subnet and the nodes'
	// network. In routes mode each has an unreachable route (or a pre-existing
	// route of someone else's that keeps it on the machine).
	CIDRs []netip.Prefix
	// PreExisting are the CIDRs whose exact route existed before and is not the
	// sandbox's (routes mode): left alone, never removed.
	PreExisting []netip.Prefix
	// Reason is why the mode was chosen when it is not routes.
	Reason string
}

// String is the line Start prints: the mode and what it covers.
func (g NetworkGuard) String() string {
	if g.Mode == GuardRoutes {
		s := "unreachable routes for " + joinPrefixes(g.CIDRs)
		if len(g.PreExisting) > 0 {
			s += " (pre-existing routes kept for " + joinPrefixes(g.PreExisting) + ")"
		}
		return s
	}
	return g.Reason + ": no host routes; kube-apiserver reaches only loopback, through an egress proxy (" +
		joinPrefixes(g.CIDRs) + " and any other non-local address refused)"
}

// NetworkGuard returns how the cluster keeps its traffic on this machine.
func (c *Cluster) NetworkGuard() NetworkGuard {
	if c.guard == nil {
		return NetworkGuard{}
	}
	g := c.guard.info
	g.CIDRs = slices.Clone(g.CIDRs)
	g.PreExisting = slices.Clone(g.PreExisting)
	return g
}

// netGuard is a running guard: a routes lease or an egress proxy.
type netGuard struct {
	info   NetworkGuard
	routes *routeLease
	egress *egressGuard
}

// startNetworkGuard chooses the mode, takes the routes or starts the proxy, and
// prints the mode. It runs before anything else starts, so that the apiserver
// can be configured for it and no dial ever precedes it. Its phase is named after
// the mode, so that `sandbox up` shows the mode with the timings.
func (c *Cluster) startNetworkGuard() error {
	start := time.Now()
	g, err := startNetGuard(c.opts.Scenario, c.opts.Flavour, c.workDir)
	d := time.Since(start)
	if err != nil {
		fmt.Fprintf(c.opts.Progress, "  %-28s failed after %v\n", "network guard", d.Round(time.Millisecond))
		return err
	}
	c.guard = g
	c.timings = append(c.timings, Timing{Phase: "network guard (" + g.info.Mode + ")", Duration: d})
	fmt.Fprintf(c.opts.Progress, "  network guard: %s\n", g.info)
	return nil
}

func startNetGuard(s *scenarios.Scenario, flavour, workDir string) (*netGuard, error) {
	cidrs, err := guardedCIDRs(s, flavour)
	if err != nil {
		return nil, err
	}
	mode := os.Getenv(NetworkGuardEnv)
	g := &netGuard{info: NetworkGuard{CIDRs: cidrs}}
	switch mode {
	case "", "auto", GuardRoutes:
		lease, reason := acquireRoutes(cidrs, workDir)
		if lease != nil {
			g.info.Mode, g.routes = GuardRoutes, lease
			g.info.PreExisting = lease.preExisting
			return g, nil
		}
		if mode == GuardRoutes {
			return nil, fmt.Errorf("network guard: %s=%s, but %s", NetworkGuardEnv, mode, reason)
		}
		g.info.Reason = reason
	case GuardEgressProxy:
		g.info.Reason = NetworkGuardEnv + "=" + mode
	default:
		return nil, fmt.Errorf("network guard: %s=%q is not auto, %s or %s", NetworkGuardEnv, mode, GuardRoutes, GuardEgressProxy)
	}
	g.info.Mode = GuardEgressProxy
	if g.egress, err = startEgressGuard(); err != nil {
		return nil, err
	}
	return g, nil
}

// configureAPIServer sets what the mode needs on kube-apiserver before it starts.
// In both modes the apiserver reaches a node's kubelet by its InternalIP only (a
// guarded address): by default it tries the node's Hostname first, and resolving a
// scenario node's name would ask the host's nameserver.
func (g *netGuard) configureAPIServer(api *envtest.APIServer, workDir string) error {
	args := api.Configure()
	args.Set("kubelet-preferred-address-types", "InternalIP")
	if g.egress == nil {
		return nil
	}
	path := filepath.Join(workDir, egressSelectorFile)
	if err := g.egress.writeConfig(path); err != nil {
		return err
	}
	args.Set("egress-selector-config-file", path)
	return nil
}

// close gives the routes back or stops the proxy; called by Stop once the
// apiserver is stopped. Idempotent.
func (g *netGuard) close() error {
	if g == nil {
		return nil
	}
	if g.routes != nil {
		return g.routes.release()
	}
	if g.egress != nil {
		return g.egress.Close()
	}
	return nil
}

// nodeNetwork is the nodes' network, kind's docker network (the first node gets
// firstNodeIP): the apiserver dials a node's kubelet there.
var nodeNetwork = netip.PrefixFrom(firstNodeIP, 16).Masked()

// guardedCIDRs lists the ranges the cluster's addresses come from, derived from
// the scenario and flavour: pools (calico-node's from the scenario; the operator
// flavour's from its Installation), pod subnet(s), Service subnet, and the node
// network. A range inside another one is left out (the outer route covers it).
func guardedCIDRs(s *scenarios.Scenario, flavour string) ([]netip.Prefix, error) {
	var all []netip.Prefix
	add := func(what, cidr string) error {
		p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			return fmt.Errorf("network guard: %s %q: %w", what, cidr, err)
		}
		all = append(all, p.Masked())
		return nil
	}
	for _, p := range s.Calico.IPPools {
		if err := add("pool "+p.Name, p.CIDR); err != nil {
			return nil, err
		}
	}
	if IsOperatorFlavour(flavour) {
		cidrs, err := installationPoolCIDRs(s, flavour)
		if err != nil {
			return nil, err
		}
		for _, cidr := range cidrs {
			if err := add("Installation pool", cidr); err != nil {
				return nil, err
			}
		}
		// With no pools listed, the operator makes one per kubeadm podSubnet CIDR
		// (operator.fillDefaults): those are guarded below.
	}
	for _, p := range s.Cluster.PodSubnets() {
		all = append(all, p.Masked())
	}
	if err := add("serviceSubnet", s.Cluster.ServiceSubnet); err != nil {
		return nil, err
	}
	for _, n := range nodeObjects(s) {
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && !nodeNetwork.Contains(ip) {
				return nil, fmt.Errorf("network guard: node %s's address %s is outside the node network %s", n.Name, ip, nodeNetwork)
			}
		}
	}
	all = append(all, nodeNetwork)
	return outermost(all), nil
}

// installationPoolCIDRs are the cidr fields of the operator flavour's
// Installation ipPools, read off the object the flavour creates.
func installationPoolCIDRs(s *scenarios.Scenario, flavour string) ([]string, error) {
	v, _ := OperatorVersion(flavour)
	entries, err := installationEntries(s, v)
	if err != nil {
		return nil, err
	}
	inst := installationObject(entries)
	spec, _ := inst.Object["spec"].(map[string]any)
	network, _ := spec["calicoNetwork"].(map[string]any)
	pools, _ := network["ipPools"].([]any)
	var out []string
	for _, p := range pools {
		if m, ok := p.(map[string]any); ok {
			if cidr, ok := m["cidr"].(string); ok {
				out = append(out, cidr)
			}
		}
	}
	return out, nil
}

// outermost drops duplicates and prefixes contained in another one, keeping the
// order of first appearance.
func outermost(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for i, p := range ps {
		covered := false
		for j, q := range ps {
			if q.Bits() <= p.Bits() && q.Contains(p.Addr()) && (q != p || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
