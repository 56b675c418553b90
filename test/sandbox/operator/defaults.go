package operator

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Pool names the operator gives the first pool of each family.
const (
	defaultPoolName   = "default-ipv4-ippool"
	defaultV6PoolName = "default-ipv6-ippool"
)

// errNoPodSubnet is extractKubeadmCIDRs' error for a kubeadm-config without one.
var errNoPodSubnet = errors.New("kubeadm configuration is missing required podSubnet field")

// fillDefaults is the operator's ippool fillDefaults (v1.34.13
// pkg/controller/ippool/defaults.go:69-237, kubeadm.go; v1.40.0 adds the
// disableNewAllocations default, defaults.go:205-207) for a kubeadm cluster with
// Calico CNI and IPAM (the only platform the sandbox is): with no pools in the
// cluster yet, the Installation's pools must lie in kubeadm's podSubnet (or, if
// it lists none, become one pool per podSubnet CIDR); with pools in the cluster
// and none listed, the list becomes empty ("manage none"). Then every entry gets
// the operator's defaults. kubeadm is the kube-system/kubeadm-config ConfigMap,
// or nil if there is none.
func fillDefaults(v Version, inst *Installation, current []Pool, kubeadm *corev1.ConfigMap) error {
	if inst.Spec.CNI == nil || inst.Spec.CNI.IPAM == nil {
		//lint:ignore ST1005 the operator's own message, verbatim
		return errors.New("Cannot perform IP pool defaulting until CNI configuration is available")
	}
	if len(current) == 0 {
		if kubeadm != nil {
			cidrs, err := kubeadmCIDRs(kubeadm)
			if err == nil {
				err = mergePlatformPodCIDRs(inst, cidrs)
			}
			if err != nil {
				//lint:ignore ST1005 the operator's own message, verbatim
				return fmt.Errorf("Could not resolve CalicoNetwork IPPool and kubeadm configuration: %s", err)
			}
		}
		if (inst.Spec.CalicoNetwork == nil || inst.Spec.CalicoNetwork.IPPools == nil) && inst.Spec.CNI.IPAM.Type == "Calico" {
			if inst.Spec.CalicoNetwork == nil {
				inst.Spec.CalicoNetwork = &CalicoNetworkSpec{}
			}
			inst.Spec.CalicoNetwork.IPPools = []IPPool{{Name: defaultPoolName, CIDR: "192.168.0.0/16"}}
		}
	} else if inst.Spec.CalicoNetwork == nil || inst.Spec.CalicoNetwork.IPPools == nil {
		if inst.Spec.CalicoNetwork == nil {
			inst.Spec.CalicoNetwork = &CalicoNetworkSpec{}
		}
		inst.Spec.CalicoNetwork.IPPools = []IPPool{}
	}
	if inst.Spec.CalicoNetwork == nil {
		return nil
	}
	names := map[string]string{}
	for _, p := range current {
		names[p.Spec.CIDR] = p.Name
	}
	pools := inst.Spec.CalicoNetwork.IPPools
	for i := range pools {
		p := &pools[i]
		if len(p.AllowedUses) == 0 {
			p.AllowedUses = []string{"Workload", "Tunnel"}
		}
		addr, _, err := net.ParseCIDR(p.CIDR)
		v4 := err == nil && addr.To4() != nil
		switch {
		case v4:
			setDefault(&p.Encapsulation, EncapsulationIPIP) // Calico CNI
			setDefault(&p.NATOutgoing, NATOutgoingEnabled)
			setDefault(&p.NodeSelector, "all()")
			if p.BlockSize == nil {
				p.BlockSize = ptr(int32(26))
			}
		case err == nil:
			setDefault(&p.Encapsulation, EncapsulationNone)
			setDefault(&p.NATOutgoing, NATOutgoingDisabled)
			setDefault(&p.NodeSelector, "all()")
			if p.BlockSize == nil {
				p.BlockSize = ptr(int32(122))
			}
		}
		if v.DisableNewAllocations && p.DisableNewAllocations == nil {
			p.DisableNewAllocations = ptr(false)
		}
		if p.DisableBGPExport == nil {
			p.DisableBGPExport = ptr(false) // the CRD's schema default (+kubebuilder:default:=false)
		}
		if p.Name == "" {
			switch name, ok := names[p.CIDR]; {
			case ok:
				p.Name = name // adopt the existing pool's name
			case len(pools) == 1 || (len(pools) == 2 && dualStack(pools)):
				p.Name = defaultPoolName
				if !v4 {
					p.Name = defaultV6PoolName
				}
			default:
				if p.Name, err = cidrToName(p.CIDR); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// kubeadmCIDRs reads podSubnet the way the operator does (a regexp over every
// value of the ConfigMap).
func kubeadmCIDRs(cm *corev1.ConfigMap) ([]string, error) {
	re := regexp.MustCompile(`podSubnet: (.*)`)
	for _, v := range cm.Data {
		if m := re.FindStringSubmatch(v); m != nil {
			var cidrs []string
			for _, c := range strings.Split(m[1], ",") {
				if _, _, err := net.ParseCIDR(c); err != nil {
					return nil, err
				}
				cidrs = append(cidrs, c)
			}
			return cidrs, nil
		}
	}
	return nil, errNoPodSubnet
}

// mergePlatformPodCIDRs: no pools listed → one per platform CIDR; pools listed →
// each must lie inside a platform CIDR.
func mergePlatformPodCIDRs(inst *Installation, platform []string) error {
	if inst.Spec.CalicoNetwork == nil {
		inst.Spec.CalicoNetwork = &CalicoNetworkSpec{}
	}
	pools := inst.Spec.CalicoNetwork.IPPools
	switch {
	case pools == nil:
		v4, v6 := false, false
		for _, c := range platform {
			addr, _, err := net.ParseCIDR(c)
			if err != nil {
				continue
			}
			name := ""
			if addr.To4() == nil && !v6 {
				name, v6 = defaultV6PoolName, true
			} else if addr.To4() != nil && !v4 {
				name, v4 = defaultPoolName, true
			}
			inst.Spec.CalicoNetwork.IPPools = append(inst.Spec.CalicoNetwork.IPPools, IPPool{Name: name, CIDR: c})
		}
	case len(pools) == 0:
	default:
		for _, p := range pools {
			within := false
			for _, c := range platform {
				within = within || cidrWithin(c, p.CIDR)
			}
			if !within {
				return fmt.Errorf("IPPool %v is not within the platform's configured pod network CIDR(s) %v", p.CIDR, platform)
			}
		}
	}
	return nil
}

func cidrWithin(outer, inner string) bool {
	o, err1 := netip.ParsePrefix(outer)
	i, err2 := netip.ParsePrefix(inner)
	return err1 == nil && err2 == nil && o.Masked().Contains(i.Masked().Addr()) && i.Bits() >= o.Bits()
}

func dualStack(pools []IPPool) bool {
	v4, v6 := false, false
	for _, p := range pools {
		if addr, _, err := net.ParseCIDR(p.CIDR); err == nil {
			v4 = v4 || addr.To4() != nil
			v6 = v6 || addr.To4() == nil
		}
	}
	return v4 && v6
}

// cidrToName names a pool after its CIDR: fe80::/64 → fe80.0000.….0000-64.
func cidrToName(cidr string) (string, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return "", err
	}
	p = p.Masked()
	return strings.ReplaceAll(p.Addr().StringExpanded(), ":", ".") + fmt.Sprintf("-%d", p.Bits()), nil
}

// validatePools is the operator's ValidatePools for Calico CNI (v1.34.13
// pkg/controller/ippool/validation.go:26-109; the LoadBalancer rules only where
// the release has them, v1.40.0 validation.go:45-61, 75-79, 93-96, 133-134).
func validatePools(v Version, inst *Installation) error {
	cidrs, names := map[string]bool{}, map[string]bool{}
	for _, p := range inst.Spec.CalicoNetwork.IPPools {
		_, cidr, err := net.ParseCIDR(p.CIDR)
		if err != nil {
			return fmt.Errorf("IP pool CIDR (%s) is invalid: %s", p.CIDR, err)
		}
		if cidrs[p.CIDR] {
			return fmt.Errorf("IP pool %v is specified more than once", p.CIDR)
		}
		cidrs[p.CIDR] = true
		if names[p.Name] {
			return fmt.Errorf("IP pool %v is specified more than once", p.Name)
		}
		names[p.Name] = true
		lb := false
		for _, u := range p.AllowedUses {
			lb = lb || (v.LoadBalancerUse && u == "LoadBalancer")
		}
		if lb && len(p.AllowedUses) > 1 {
			return fmt.Errorf("IP pool %s AllowedUse LoadBalancer cannot be used with Workload/Tunnel", p.Name)
		}
		if p.NATOutgoing != NATOutgoingEnabled && p.NATOutgoing != NATOutgoingDisabled {
			return fmt.Errorf("%s is invalid for natOutgoing, should be one of Enabled,Disabled", p.NATOutgoing)
		}
		if p.NodeSelector == "" {
			return errors.New("IP pool nodeSelector should not be empty")
		}
		if lb && p.NodeSelector != "all()" {
			return errors.New("IP pool nodeSelector should be set to all() if allowedUse is LoadBalancer")
		}
		switch p.Encapsulation {
		case EncapsulationIPIP, EncapsulationIPIPCrossSubnet, EncapsulationVXLAN, EncapsulationVXLANCrossSubnet:
			if lb {
				return errors.New("IP pool encapsulation must be none if allowedUse is LoadBalancer")
			}
		case EncapsulationNone:
		default:
			return fmt.Errorf("%s is invalid for ipPool.encapsulation, should be one of IPIPCrossSubnet,IPIP,VXLAN,VXLANCrossSubnet,None", p.Encapsulation)
		}
		ones, _ := cidr.Mask.Size()
		if p.BlockSize != nil {
			if cidr.IP.To4() != nil && (*p.BlockSize > 32 || *p.BlockSize < 20) {
				return errors.New("IPv4 pool block size must be greater than 19 and less than or equal to 32")
			}
			if cidr.IP.To4() == nil && (*p.BlockSize > 128 || *p.BlockSize < 116) {
				return errors.New("IPv6 pool block size must be greater than 115 and less than or equal to 128")
			}
			if int32(ones) > *p.BlockSize {
				//lint:ignore ST1005 the operator's own message, verbatim
				return errors.New("IP pool size is too small. It must be equal to or greater than the block size.")
			}
		}
		if lb && p.DisableBGPExport != nil && *p.DisableBGPExport {
			return errors.New("IP pool disable bgp export must be false when AllowedUse is LoadBalancer")
		}
	}
	return nil
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

func ptr[T any](v T) *T { return &v }
