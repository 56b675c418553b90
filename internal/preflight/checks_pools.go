package preflight

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/textlist"
)

func init() {
	Register(Check{ID: "cluster-cidr", Roles: []decl.PoolRole{decl.PoolCreates}, Run: checkClusterCIDR})
	Register(Check{ID: "capacity", Roles: migrationRoles, Run: onMigration(checkCapacity)})
	Register(Check{ID: "coverage", Roles: migrationRoles, Run: onMigration(checkCoverage)})
	Register(Check{ID: "tunnel", Roles: []decl.PoolRole{decl.PoolCreates, decl.PoolDisables}, Run: onMigration(checkTunnel)})
	Register(Check{ID: "bgp-export", Roles: migrationRoles, Run: checkBGPExport})
}

// incomplete is the finding of a check that cannot judge the migration because a
// pool step's parameters are known only after apply.
func incomplete(m *Migration) []Finding {
	return []Finding{{Severity: Info, Step: m.Incomplete,
		Message: "step " + m.Incomplete + "'s parameters are known only after apply: not checked here (the actions check what they can at apply)"}}
}

// onMigration adapts a check of the migration the runbook describes: it reads the
// migration and, while a pool step's parameters are known only after apply, says
// so instead of judging.
func onMigration(check func(context.Context, *Input, *Migration) ([]Finding, error)) func(context.Context, *Input) ([]Finding, error) {
	return func(ctx context.Context, in *Input) ([]Finding, error) {
		m, err := in.Migration(ctx)
		if err != nil {
			return nil, err
		}
		if m.Incomplete != "" {
			return incomplete(m), nil
		}
		return check(ctx, in, m)
	}
}

// headroom is the share of a new pool kept free after the move: pods surge during
// rollouts and nodes' blocks are never full.
const headroom = 0.2

// checkClusterCIDR: a pool outside the cluster pod CIDR makes kube-proxy treat its
// pods' traffic as external (SNAT, broken policy: calico#5952, calico#7440).
// ensurePool refuses it too, at apply; here it is found together with everything
// else, and for an existing target pool it is a warning.
func checkClusterCIDR(ctx context.Context, in *Input) ([]Finding, error) {
	m, err := in.Migration(ctx)
	if err != nil {
		return nil, err
	}
	var out []Finding
	var sources []calico.CIDRSource
	read := false
	for _, n := range m.New {
		if n.Step == "" {
			continue // a target pool the runbook does not create
		}
		srcs := []calico.CIDRSource{{Source: "the clusterCIDR parameter", CIDRs: []netip.Prefix{m.ClusterCIDROverride[n.Name]}}}
		if _, ok := m.ClusterCIDROverride[n.Name]; !ok {
			if !read {
				if sources, err = in.Calico.ClusterCIDRs(ctx); err != nil {
					return nil, fmt.Errorf("read the cluster pod CIDR: %w", err)
				}
				read = true
			}
			srcs = sources
		}
		sev := Block
		if !n.Planned {
			sev = Warn // existing: converging it does not make it worse
		}
		for _, p := range calico.CheckInsideClusterCIDR(n.CIDR, srcs) {
			out = append(out, Finding{Severity: sev, Step: n.Step, Subject: "IPPool " + n.Name + " spec.cidr", Message: p,
				Fix: "choose a CIDR inside the cluster pod CIDR (kubeadm networking.podSubnet, kube-controller-manager --cluster-cidr, kube-proxy clusterCIDR), or widen those first"})
		}
	}
	return out, nil
}

// poolSize is the number of addresses in a prefix, capped (IPv6 pools are
// effectively unbounded).
func poolSize(p netip.Prefix) float64 {
	bits := p.Addr().BitLen() - p.Bits()
	if bits > 62 {
		return math.Ldexp(1, 62)
	}
	return math.Ldexp(1, bits)
}

// toMove counts, per family, the pods holding an address in an old pool and the
// nodes with a pod there.
type familyLoad struct {
	pods     []calico.PodAddress
	tunnels  []calico.TunnelAddress
	nodes    map[string]int // node -> pods to move from it
	oldNames []string
}

func loads(ctx context.Context, in *Input, m *Migration) (map[calico.Family]*familyLoad, []calico.Node, error) {
	pods, err := in.Calico.Pods(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read pods: %w", err)
	}
	nodes, err := in.Calico.Nodes(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read nodes: %w", err)
	}
	out := map[calico.Family]*familyLoad{}
	for _, o := range m.Old {
		if !o.CIDR.IsValid() {
			continue
		}
		l := out[o.Family()]
		if l == nil {
			l = &familyLoad{nodes: map[string]int{}}
			out[o.Family()] = l
		}
		l.oldNames = append(l.oldNames, o.Name)
		// Via: pods an earlier move sends into o are moved on by this one.
		for _, cidr := range append([]netip.Prefix{o.CIDR}, m.Via[o.Name]...) {
			for _, pa := range calico.PodsIn(pods, cidr) {
				l.pods = append(l.pods, pa)
				l.nodes[pa.Pod.Node]++
			}
		}
		l.tunnels = append(l.tunnels, calico.TunnelAddressesIn(nodes, o.CIDR)...)
	}
	return out, nodes, nil
}

// checkCapacity: the new pools of a family must hold every pod that moves (plus
// headroom), and give every node that allocates from them a block of its own.
func checkCapacity(ctx context.Context, in *Input, m *Migration) ([]Finding, error) {
	ls, nodes, err := loads(ctx, in, m)
	if err != nil {
		return nil, err
	}
	blocks, err := in.Calico.Blocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("read IPAM blocks: %w", err)
	}
	var out []Finding
	for _, fam := range families(ls) {
		l := ls[fam]
		news := m.NewOfFamily(fam)
		if len(news) == 0 {
			continue // coverage reports it
		}
		var total, used float64
		var names []string
		for _, n := range news {
			total += poolSize(n.CIDR)
			for _, a := range calico.AllocationsIn(blocks, n.CIDR) {
				if !m.freed(a.IP) { // a deleted pool's blocks are gone when n is created again
					used++
				}
			}
			names = append(names, fmt.Sprintf("%s (%s)", n.Name, n.CIDR))
		}
		need := float64(len(l.pods) + len(l.tunnels))
		subject := "IPPool " + strings.Join(names, ", ")
		switch {
		case used+need > total:
			out = append(out, Finding{Severity: Block, Step: news[0].Step, Subject: subject,
				Message: fmt.Sprintf("IPv%d: %.0f addresses to move (%d pods, %d tunnel addresses) and %.0f already used do not fit in %.0f addresses", fam, need, len(l.pods), len(l.tunnels), used, total),
				Fix:     "use a larger CIDR for the new pool (a shorter prefix)"})
		case (used+need)*(1+headroom) > total:
			out = append(out, Finding{Severity: Warn, Step: news[0].Step, Subject: subject,
				Message: fmt.Sprintf("IPv%d: %.0f addresses to move and %.0f already used leave less than %.0f%% of %.0f addresses free for rollouts and partly used blocks", fam, need, used, headroom*100, total),
				Fix:     "use a larger CIDR for the new pool"})
		default:
			out = append(out, Finding{Severity: Info, Step: news[0].Step, Subject: subject,
				Message: fmt.Sprintf("IPv%d: %d pods and %d tunnel addresses to move into %s addresses (%.0f used)", fam, len(l.pods), len(l.tunnels), countText(total), used)})
		}
		for _, n := range news {
			selected := 0
			for i := range nodes {
				if ok, err := calico.SelectsNode(n.Spec.NodeSelector, nodes[i].Labels); err == nil && ok {
					selected++
				}
			}
			blockCount := math.Ldexp(1, n.Spec.BlockSize-n.CIDR.Bits())
			if n.Spec.BlockSize < n.CIDR.Bits() {
				out = append(out, Finding{Severity: Block, Step: n.Step, Subject: "IPPool " + n.Name + " spec.blockSize",
					Message: fmt.Sprintf("blockSize /%d is larger than the pool %s: no block fits", n.Spec.BlockSize, n.CIDR),
					Fix:     "use a blockSize at least as long as the pool's prefix"})
				continue
			}
			if float64(selected) > blockCount {
				out = append(out, Finding{Severity: Warn, Step: n.Step, Subject: "IPPool " + n.Name + " spec.blockSize",
					Message: fmt.Sprintf("%d nodes select the pool but it has only %.0f blocks of /%d: the others borrow addresses from other nodes' blocks (routes per address), or get none with strictAffinity", selected, blockCount, n.Spec.BlockSize),
					Fix:     "use a larger CIDR or a smaller block (a longer blockSize)"})
			}
			perBlock := math.Ldexp(1, n.CIDR.Addr().BitLen()-n.Spec.BlockSize)
			for node, k := range l.nodes {
				if float64(k) > 4*perBlock {
					out = append(out, Finding{Severity: Info, Step: n.Step, Subject: "node " + node,
						Message: fmt.Sprintf("%d pods move on this node, %.0f addresses per /%d block: it claims several blocks", k, perBlock, n.Spec.BlockSize)})
				}
			}
		}
	}
	return out, nil
}

// countText renders an address count; IPv6 pools are beyond counting.
func countText(n float64) string {
	if n >= math.Ldexp(1, 62) {
		return "over 2^62"
	}
	return fmt.Sprintf("%.0f", n)
}

func families(ls map[calico.Family]*familyLoad) []calico.Family {
	var fs []calico.Family
	for f := range ls {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i] < fs[j] })
	return fs
}

// checkCoverage: every node with a pod in an old pool must be selected by a new
// pool of the same family, in each family that moves (dual-stack pods need both):
// otherwise its replacement pods get no address of that family and never start.
func checkCoverage(ctx context.Context, in *Input, m *Migration) ([]Finding, error) {
	ls, nodes, err := loads(ctx, in, m)
	if err != nil {
		return nil, err
	}
	labels := map[string]map[string]string{}
	for _, n := range nodes {
		labels[n.Name] = n.Labels
	}
	var out []Finding
	for _, fam := range families(ls) {
		l := ls[fam]
		if len(l.pods) == 0 {
			continue
		}
		var targets []NewPool
		for _, n := range m.NewOfFamily(fam) {
			if !n.Spec.Disabled && n.Allows(v3.IPPoolAllowedUseWorkload) {
				targets = append(targets, n)
			}
		}
		if len(targets) == 0 {
			out = append(out, Finding{Severity: Block, Subject: "IPv" + fmt.Sprint(fam),
				Message: fmt.Sprintf("%d pods hold IPv%d addresses in %s, but the runbook has no enabled new IPv%d pool for workloads: once the old pool is disabled their replacements get no IPv%d address and never start", len(l.pods), fam, strings.Join(l.oldNames, ", "), fam, fam),
				Fix:     fmt.Sprintf("add an ensurePool step for an IPv%d pool (both families move together on dual-stack) or target an existing one", fam)})
			continue
		}
		var uncovered []string
		for node := range l.nodes {
			covered := false
			for _, t := range targets {
				if ok, err := calico.SelectsNode(t.Spec.NodeSelector, labels[node]); err == nil && ok {
					covered = true
				}
			}
			if !covered {
				uncovered = append(uncovered, fmt.Sprintf("%s (%d pods)", node, l.nodes[node]))
			}
		}
		sort.Strings(uncovered)
		if len(uncovered) > 0 {
			sels := make([]string, len(targets))
			for i, t := range targets {
				sels[i] = fmt.Sprintf("%s: %q", t.Name, t.Spec.NodeSelector)
			}
			out = append(out, Finding{Severity: Block, Step: targets[0].Step, Subject: "IPPool " + targets[0].Name + " spec.nodeSelector",
				Message: fmt.Sprintf("IPv%d: %d node(s) with pods in %s are selected by no new pool (%s): %s; their replacement pods would get no address", fam, len(uncovered), strings.Join(l.oldNames, ", "), strings.Join(sels, ", "), textlist.Capped(uncovered, listLimit)),
				Fix:     "widen the new pool's nodeSelector (all() selects every node) or add a pool for those nodes"})
		}
	}
	return out, nil
}

// checkTunnel: disabling an old pool moves node tunnel addresses at once; a node
// that no enabled pool with the same encapsulation and Tunnel use selects loses
// its tunnel address (and node-to-pod traffic over it). disablePool refuses that
// itself, but only against pools that exist: here the new pools are counted as the
// runbook will create them, so a new pool without the old one's encapsulation is
// found before anything is created.
func checkTunnel(ctx context.Context, in *Input, m *Migration) ([]Finding, error) {
	if len(m.Old) == 0 || !in.HasRole(decl.PoolDisables) {
		return nil, nil
	}
	nodes, err := in.Calico.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	// The pools with the new ones in place, the old ones still enabled: what
	// TunnelImpact disables one at a time. Old pools disabled by earlier steps of
	// the run are disabled here too.
	var base []calico.Pool
	for _, p := range m.After() {
		if m.IsOld(p.Name) {
			p.Spec.Disabled = calico.FindPool(m.Pools, p.Name).Spec.Disabled
		}
		base = append(base, p)
	}
	var out []Finding
	for _, o := range m.Old {
		var lost []string
		for _, c := range calico.TunnelImpact(nodes, base, o.Name) {
			if c.Lost() {
				lost = append(lost, c.String())
			}
		}
		if len(lost) > 0 {
			out = append(out, Finding{Severity: Block, Subject: "IPPool " + o.Name,
				Message: fmt.Sprintf("disabling it leaves %d node tunnel address(es) without a pool: %s", len(lost), textlist.Capped(lost, listLimit)),
				Fix:     fmt.Sprintf("give the new pool the old pool's encapsulation (ipipMode %s, vxlanMode %s), Tunnel in allowedUses, and a nodeSelector selecting those nodes", o.Spec.IPIPMode, o.Spec.VXLANMode)})
		}
	}
	return out, nil
}

var bgpPeersGVR = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "bgppeers"}

// bgpInUse says whether Calico runs BGP, and why it thinks so: the operator's
// spec.calicoNetwork.bgp (default Enabled), calico-config's calico_backend bird,
// or BGPPeers.
func bgpInUse(ctx context.Context, in *Input) (bool, string, error) {
	inst, err := in.installation(ctx)
	if err != nil {
		return false, "", err
	}
	if inst != nil {
		v, found, _ := unstructured.NestedString(inst.Object, "spec", "calicoNetwork", "bgp")
		if !found || v == "" || v == "Enabled" {
			return true, "Installation default spec.calicoNetwork.bgp is Enabled", nil
		}
		return false, "", nil
	}
	cm, err := in.ConfigMap(ctx, calicoConfigNamespace, calicoConfigName)
	if err != nil {
		return false, "", err
	}
	if cm != nil && cm.Data[calicoBackendKey] == "bird" {
		return true, "calico-config calico_backend is bird", nil
	}
	peers, err := in.List(ctx, bgpPeersGVR)
	if err != nil {
		return false, "", err
	}
	if len(peers) > 0 {
		return true, fmt.Sprintf("%d BGPPeer(s) exist", len(peers)), nil
	}
	return false, "", nil
}

// checkBGPExport: with BGP in use, a new pool with disableBGPExport is not
// advertised, so whatever reached the old pool's pods over BGP (top-of-rack
// routers, other clusters) cannot reach the moved pods.
func checkBGPExport(ctx context.Context, in *Input) ([]Finding, error) {
	m, err := in.Migration(ctx)
	if err != nil {
		return nil, err
	}
	var suspects []NewPool
	for _, n := range m.New {
		if n.Spec.DisableBGPExport {
			suspects = append(suspects, n)
		}
	}
	if len(suspects) == 0 {
		return nil, nil
	}
	on, why, err := bgpInUse(ctx, in)
	if err != nil || !on {
		return nil, err
	}
	var out []Finding
	for _, n := range suspects {
		exported := ""
		for _, o := range m.Old {
			if o.Family() == n.Family() && !o.Spec.DisableBGPExport {
				exported = " while the old pool " + o.Name + " is exported"
			}
		}
		out = append(out, Finding{Severity: Warn, Step: n.Step, Subject: "IPPool " + n.Name + " spec.disableBGPExport",
			Message: fmt.Sprintf("BGP is in use (%s) but the new pool is not exported over BGP%s: peers lose the routes to pods moved into it", why, exported),
			Fix:     "set disableBGPExport: false on the new pool unless its pods must not be reachable from BGP peers"})
	}
	return out, nil
}
