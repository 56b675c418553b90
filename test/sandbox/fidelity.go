package sandbox

// CalicoComponent says how one part of Calico is played in a running sandbox:
// by the real upstream code (Real, Version) or by a stand-in.
type CalicoComponent struct {
	Name    string `json:"name"`
	Real    bool   `json:"real"`
	Absent  bool   `json:"absent,omitempty"`  // neither real nor a stand-in runs
	Version string `json:"version,omitempty"` // the upstream release it is (Real) or is modelled on
	How     string `json:"how"`
}

// CalicoComponents lists the Calico parts of this cluster (README "Fidelity").
func (c *Cluster) CalicoComponents() []CalicoComponent {
	v := c.calicoVersion
	out := []CalicoComponent{
		{Name: "CRDs, RBAC, calico-config, DaemonSet, Deployment", Real: true, Version: v, How: "manifests/calico.yaml of the pinned module"},
		{Name: "calico-node: tunnel addresses (allocateip)", Real: true, Version: v, How: "calico-allocate-tunnel-addrs, one process per node, run-once then daemon per calico-node pod"},
		{Name: "calico-node: start-up (BGP address)", Version: v, How: "calinode.EnsureBGPAddress: the InternalIP/16"},
		{Name: "calico-node: felix, BIRD, confd", Absent: true, How: "not run: kwok nodes have no host network"},
		{Name: "calico-kube-controllers (node controller)", Real: true, Version: v, How: "calico-kube-controllers, one supervised process"},
		{Name: "Calico CNI plugin + calico-ipam", Version: v, How: "cni/, in-process, on the real libcalico-go IPAM"},
	}
	if c.opts.Flavour != FlavourCRD {
		out = append(out, CalicoComponent{Name: "calico-apiserver", Real: true, Version: v, How: "calico-apiserver process"})
	}
	if c.operator != nil {
		out = append(out, CalicoComponent{Name: "tigera-operator (IP pool controller, APIServer Ready)", Version: c.operatorVersion().Name,
			How: "operator/, in-process stand-in; APIServer Ready follows Deployment calico-apiserver, whose kwok pod's readiness probes the real server"})
	}
	return out
}
