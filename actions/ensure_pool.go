package actions

import "github.com/runbookdev/runbook/internal/value"

var ensurePoolDecl = &Decl{
	Name:    "ensurePool",
	Summary: "Create a Calico IP pool, or converge an existing one to the given spec.",
	Description: `Creates the pool when it is absent; when it exists, patches only the fields given here
that differ (never a round-trip of the whole object). Satisfied (unchanged) when the pool
exists with every given field equal.

Refused before anything changes: a different cidr or blockSize on an existing pool (both are
immutable in Calico; the action never deletes and recreates), a CIDR overlapping another pool,
a CIDR outside the cluster pod CIDR (kubeadm podSubnet, kube-controller-manager --cluster-cidr,
kube-proxy clusterCIDR, or the clusterCIDR parameter), ipipMode and vxlanMode both enabled, a
pool smaller than one block, and fields this Calico version does not know.`,
	Params: []Param{
		p("name", value.String, true, nil, "Name of the IPPool."),
		p("cidr", value.CIDR, true, nil, "Pool CIDR, IPv4 or IPv6; canonicalised."),
		p("ipipMode", value.String, false, "Never", "IP-in-IP encapsulation.", "Never", "Always", "CrossSubnet"),
		p("vxlanMode", value.String, false, "Never", "VXLAN encapsulation.", "Never", "Always", "CrossSubnet"),
		p("natOutgoing", value.Bool, false, false, "SNAT traffic leaving the pool to destinations outside all pools."),
		p("blockSize", value.Int, false, nil, "Block prefix length (IPv4 20-32, default 26; IPv6 116-128, default 122)."),
		p("nodeSelector", value.String, false, "all()", "Calico selector of the nodes that may allocate from the pool."),
		p("allowedUses", value.List, false, nil, "Any of Workload, Tunnel, LoadBalancer (default Workload, Tunnel)."),
		p("disableBGPExport", value.Bool, false, false, "Do not advertise the pool's routes over BGP."),
		p("disabled", value.Bool, false, false, "Create the pool disabled."),
		p("clusterCIDR", value.CIDR, false, nil, "Override the cluster pod CIDR the pool must lie in, when it cannot be discovered."),
	},
	Outputs: []Output{
		{Name: "name", Type: value.String, Description: "Name of the pool."},
		{Name: "cidr", Type: value.CIDR, Description: "Canonical CIDR of the pool."},
		{Name: "created", Type: value.Bool, Description: "Whether this run created the pool."},
	},
	Inverse: "Deletes the pool, only if this run created it and no address is allocated in it; otherwise keeps it and says why.",
}
