package calico

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Where the cluster's pod CIDR is configured on a kubeadm-style cluster. With Calico
// IPAM, node spec.podCIDRs is not the CIDR pods get addresses from, so it is no
// source. A pool outside the cluster CIDR makes kube-proxy treat its pods' traffic
// as external (SNAT, broken policy: calico#5952, calico#7440).
const (
	kubeadmConfigMap   = "kubeadm-config"
	kubeProxyConfigMap = "kube-proxy"
	kcmComponentLabel  = "component"
	kcmComponent       = "kube-controller-manager"
)

// parseCIDRList parses a comma-separated list of CIDRs (the dual-stack form of all
// three sources).
func parseCIDRList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		p, err := ParseCIDR(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// kubeadmPodSubnet reads networking.podSubnet from kubeadm's ClusterConfiguration.
func kubeadmPodSubnet(clusterConfiguration string) ([]netip.Prefix, error) {
	var cc struct {
		Networking struct {
			PodSubnet string `json:"podSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(clusterConfiguration), &cc); err != nil {
		return nil, fmt.Errorf("parse ClusterConfiguration: %w", err)
	}
	return parseCIDRList(cc.Networking.PodSubnet)
}

// kubeProxyClusterCIDR reads clusterCIDR from a KubeProxyConfiguration.
func kubeProxyClusterCIDR(config string) ([]netip.Prefix, error) {
	var kc struct {
		ClusterCIDR string `json:"clusterCIDR"`
	}
	if err := yaml.Unmarshal([]byte(config), &kc); err != nil {
		return nil, fmt.Errorf("parse KubeProxyConfiguration: %w", err)
	}
	return parseCIDRList(kc.ClusterCIDR)
}

// flagValue finds --name=value or --name value in a command line.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--"+name+"="):
			return strings.TrimPrefix(a, "--"+name+"="), true
		case a == "--"+name && i+1 < len(args):
			return args[i+1], true
		}
	}
	return "", false
}

// ClusterCIDRSources reads the pod CIDR from each source that is present: kubeadm's
// ClusterConfiguration, kube-proxy's configuration (both ConfigMaps in
// kube-system), and kube-controller-manager's --cluster-cidr from its mirror pods.
// Sources that are absent are skipped; a source that is present but unreadable is
// an error, since guessing around it could let a pool outside the CIDR through.
func ClusterCIDRSources(configMaps []corev1.ConfigMap, kcmPods []corev1.Pod) ([]CIDRSource, error) {
	var out []CIDRSource
	for i := range configMaps {
		cm := &configMaps[i]
		if cm.Namespace != "kube-system" {
			continue
		}
		var (
			cidrs  []netip.Prefix
			err    error
			source string
		)
		switch cm.Name {
		case kubeadmConfigMap:
			raw, ok := cm.Data["ClusterConfiguration"]
			if !ok {
				continue
			}
			source = "kubeadm-config networking.podSubnet"
			cidrs, err = kubeadmPodSubnet(raw)
		case kubeProxyConfigMap:
			raw, ok := cm.Data["config.conf"]
			if !ok {
				continue
			}
			source = "kube-proxy clusterCIDR"
			cidrs, err = kubeProxyClusterCIDR(raw)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(cidrs) > 0 {
			out = append(out, CIDRSource{Source: source, CIDRs: cidrs})
		}
	}
	for i := range kcmPods {
		p := &kcmPods[i]
		for _, c := range p.Spec.Containers {
			v, ok := flagValue(append(append([]string(nil), c.Command...), c.Args...), "cluster-cidr")
			if !ok {
				continue
			}
			source := fmt.Sprintf("kube-controller-manager --cluster-cidr (pod %s/%s)", p.Namespace, p.Name)
			cidrs, err := parseCIDRList(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			if len(cidrs) > 0 {
				out = append(out, CIDRSource{Source: source, CIDRs: cidrs})
			}
		}
	}
	return out, nil
}

// IsKCMPod reports whether a pod is a kube-controller-manager (kubeadm static) pod.
func IsKCMPod(p *corev1.Pod) bool {
	return p.Namespace == "kube-system" && p.Labels[kcmComponentLabel] == kcmComponent
}

// CheckInsideClusterCIDR checks that cidr lies inside the cluster pod CIDR of its
// family according to every source that configures that family: sources that
// disagree are a misconfigured cluster, and the pool has to satisfy all of them. No
// source for the family is an error too; the caller can then pass the CIDR
// explicitly (ensurePool's clusterCIDR).
func CheckInsideClusterCIDR(cidr netip.Prefix, sources []CIDRSource) []string {
	fam := FamilyOf(cidr)
	var problems []string
	seen := false
	for _, s := range sources {
		var ofFamily []string
		inside := false
		for _, c := range s.CIDRs {
			if FamilyOf(c) != fam {
				continue
			}
			ofFamily = append(ofFamily, c.String())
			inside = inside || Contains(c, cidr)
		}
		if len(ofFamily) == 0 {
			continue
		}
		seen = true
		if !inside {
			problems = append(problems, fmt.Sprintf("CIDR %s is outside the cluster pod CIDR %s (%s)", cidr, strings.Join(ofFamily, ","), s.Source))
		}
	}
	if !seen {
		problems = append(problems, fmt.Sprintf("the cluster's IPv%d pod CIDR could not be discovered (kubeadm-config, kube-controller-manager --cluster-cidr, kube-proxy clusterCIDR); pass it as clusterCIDR", fam))
	}
	return problems
}
