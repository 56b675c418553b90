package operator

// toPoolSpec is the operator's ToProjectCalicoV1: an Installation pool entry as
// a crd.projectcalico.org/v1 spec. Unlike the operator it writes "Never" for an
// encapsulation that is off instead of leaving the mode empty: the Calico API
// server defaults empty modes to "Never", and comparing the two would make every
// reconciliation rewrite the pool.
func toPoolSpec(p IPPool) PoolSpec {
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
	if p.DisableNewAllocations != nil {
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

// fromPoolSpec is the operator's FromProjectCalicoV1, its inverse: used to
// recognise an unlabelled pool that matches an Installation entry exactly (which
// the operator then adopts).
func fromPoolSpec(name string, s PoolSpec) IPPool {
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
	if s.NATOutgoing {
		p.NATOutgoing = NATOutgoingEnabled
	} else {
		p.NATOutgoing = NATOutgoingDisabled
	}
	disabled, noExport := s.Disabled, s.DisableBGPExport
	blockSize := int32(s.BlockSize)
	p.DisableNewAllocations, p.DisableBGPExport, p.BlockSize = &disabled, &noExport, &blockSize
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
