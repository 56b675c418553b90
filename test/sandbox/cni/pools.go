package cni

import (
	"encoding/json"
	"fmt"
	"net"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	cnet "github.com/projectcalico/calico/libcalico-go/lib/net"
)

// The annotations by which a namespace or pod pins the pools its pods' addresses
// come from (JSON lists of pool names or CIDRs).
const (
	AnnotationIPv4Pools = "cni.projectcalico.org/ipv4pools"
	AnnotationIPv6Pools = "cni.projectcalico.org/ipv6pools"
)

// RequestedPools returns the pools the Calico CNI plugin asks IPAM for, per
// family: the CNI config's ipv4_pools/ipv6_pools, replaced by the namespace's
// annotation, replaced by the pod's (cni-plugin/pkg/k8s: a non-empty pod
// annotation wins over the namespace's, which wins over the config).
func RequestedPools(conf IPAMConf, nsAnnotations, podAnnotations map[string]string) (v4, v6 []string, err error) {
	v4, v6 = conf.IPv4Pools, conf.IPv6Pools
	for _, src := range []struct {
		what        string
		annotations map[string]string
	}{{"namespace", nsAnnotations}, {"pod", podAnnotations}} {
		if raw := src.annotations[AnnotationIPv4Pools]; raw != "" {
			if err := json.Unmarshal([]byte(raw), &v4); err != nil {
				return nil, nil, fmt.Errorf("%s annotation %s: %w", src.what, AnnotationIPv4Pools, err)
			}
		}
		if raw := src.annotations[AnnotationIPv6Pools]; raw != "" {
			if err := json.Unmarshal([]byte(raw), &v6); err != nil {
				return nil, nil, fmt.Errorf("%s annotation %s: %w", src.what, AnnotationIPv6Pools, err)
			}
		}
	}
	return v4, v6, nil
}

// ResolvePools turns pool names or CIDRs into CIDRs the way the CNI plugin does
// (cni-plugin/internal/pkg/utils.ResolvePools), with its error messages. Whether
// a pool is enabled is IPAM's check, not this one's.
func ResolvePools(pools []v3.IPPool, requested []string, isV4 bool) ([]cnet.IPNet, error) {
	result := []cnet.IPNet{}
	for _, p := range requested {
		_, cidr, err := net.ParseCIDR(p)
		if err != nil {
			for _, pool := range pools {
				if pool.Name != p {
					continue
				}
				if _, cidr, err = net.ParseCIDR(pool.Spec.CIDR); err != nil {
					return nil, fmt.Errorf("failed to parse IP pool cidr: %s", err)
				}
			}
			if cidr == nil {
				return nil, fmt.Errorf("error parsing pool %q: %s", p, err)
			}
		}
		ip := cidr.IP
		if isV4 && ip.To4() == nil {
			return nil, fmt.Errorf("%q isn't a IPv4 address", ip)
		}
		if !isV4 && ip.To4() != nil {
			return nil, fmt.Errorf("%q isn't a IPv6 address", ip)
		}
		result = append(result, cnet.IPNet{IPNet: *cidr})
	}
	return result, nil
}
