package operator

// toPoolSpec is the operator's ToProjectCalicoV1 (v1.34.13
// api/v1/installation_types.go:680-730; v1.40.0 pool_controller.go:396-455): an
// Installation pool entry as a crd.projectcalico.org/v1 spec. natOutgoing is
// true only for "Enabled"; spec.disabled comes from disableNewAllocations where
// the release has it and is otherwise never set, so every update writes
// `disabled: false`. Unlike the operator it writes "Never" for an encapsulation
// that is off instead of leaving the mode empty: the Calico API server defaults
// empty modes to "Never", and comparing the two would make every reconciliation
// rewrite the pool.
func toPoolSpec(v Version, p IPPool) PoolSpec {
	s := PoolSpec{CIDR: p.CIDR, IPIPMode: "Never", VXLANMode: "Never"}
	switch p.Encapsulation {
	case EncapsulationIPIP:
		s.IPIPMode = "Always"
	case EncapsulationIPIPCrossSubnet:
		s.IPIPMode = "CrossSubnet"
	case EncapsulationVXLAN:
		s.VXLANMode = "Always"
	case EncapsulationVXLANCrossSubnet:
		s.VXLANMode = "CrossSubnet"
	}
	s.NATOutgoing = p.NATOutgoing == NATOutgoingEnabled
	if v.DisableNewAllocations && p.DisableNewAllocations != nil {
		s.Disabled = *p.DisableNewAllocations
	}
	if p.BlockSize != nil {
		s.BlockSize = int(*p.BlockSize)
	}
	s.NodeSelector = p.NodeSelector
	if p.DisableBGPExport != nil {
		s.DisableBGPExport = *p.DisableBGPExport
	}
	s.AllowedUses = append([]string(nil), p.AllowedUses...)
	return s
}

// fromPoolSpec is the operator's FromProjectCalicoV1 (v1.34.13
// installation_types.go:735-777; v1.40.0 pool_controller.go:457-508), its
// inverse: used to recognise an unlabelled pool that matches an Installation
// entry exactly (which the operator then adopts). BlockSize and
// DisableBGPExport are always set. natOutgoing false is "Disabled" only from
// v1.36 on; at v1.34.13 it stays "", which no defaulted entry has, so such a
// pool is never adopted.
func fromPoolSpec(v Version, name string, s PoolSpec) IPPool {
	p := IPPool{Name: name, CIDR: s.CIDR}
	switch s.IPIPMode {
	case "Always":
		p.Encapsulation = EncapsulationIPIP
	case "CrossSubnet":
		p.Encapsulation = EncapsulationIPIPCrossSubnet
	}
	switch s.VXLANMode {
	case "Always":
		p.Encapsulation = EncapsulationVXLAN
	case "CrossSubnet":
		p.Encapsulation = EncapsulationVXLANCrossSubnet
	}
	switch {
	case s.NATOutgoing:
		p.NATOutgoing = NATOutgoingEnabled
	case v.DisableNewAllocations:
		p.NATOutgoing = NATOutgoingDisabled
	}
	if v.DisableNewAllocations {
		disabled := s.Disabled
		p.DisableNewAllocations = &disabled
	}
	noExport, blockSize := s.DisableBGPExport, int32(s.BlockSize)
	p.DisableBGPExport, p.BlockSize = &noExport, &blockSize
	p.NodeSelector = s.NodeSelector
	p.AllowedUses = append([]string(nil), s.AllowedUses...)
	return p
}

// normalized fills the defaults the Calico API server applies, so that a spec
// written by the operator compares equal to what the server stored.
func (s PoolSpec) normalized() PoolSpec {
	if s.IPIPMode == "" {
		s.IPIPMode = "Never"
	}
	if s.VXLANMode == "" {
		s.VXLANMode = "Never"
	}
	if s.NodeSelector == "" {
		s.NodeSelector = "all()"
	}
	if len(s.AllowedUses) == 0 {
		s.AllowedUses = []string{"Workload", "Tunnel"}
	}
	return s
}
