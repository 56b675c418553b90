package calico

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func configMap(name, key, data string) corev1.ConfigMap {
	return corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name}, Data: map[string]string{key: data}}
}

func kcmPod(args ...string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-controller-manager-cp",
		Labels: map[string]string{"component": "kube-controller-manager"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kcm", Command: append([]string{"kube-controller-manager"}, args...)}}}}
}

func TestClusterCIDRSources(t *testing.T) {
	cms := []corev1.ConfigMap{
		configMap("kubeadm-config", "ClusterConfiguration", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.0.0.0/16,fd00::/48\n  serviceSubnet: 10.96.0.0/12\n"),
		configMap("kube-proxy", "config.conf", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.0.0.0/16\n"),
		configMap("unrelated", "x", "y"),
	}
	pods := []corev1.Pod{kcmPod("--allocate-node-cidrs=true", "--cluster-cidr", "10.0.0.0/16")}
	got, err := ClusterCIDRSources(cms, pods)
	if err != nil {
		t.Fatal(err)
	}
	want := []CIDRSource{
		{Source: "kubeadm-config networking.podSubnet", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00::/48")}},
		{Source: "kube-proxy clusterCIDR", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}},
		{Source: "kube-controller-manager --cluster-cidr (pod kube-system/kube-controller-manager-cp)", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}

	if _, err := ClusterCIDRSources([]corev1.ConfigMap{configMap("kube-proxy", "config.conf", "clusterCIDR: 10.0.0.0/99")}, nil); err == nil {
		t.Error("an unreadable source must be an error, not skipped")
	}
	if got, _ := ClusterCIDRSources([]corev1.ConfigMap{configMap("kube-proxy", "config.conf", "mode: ipvs")}, []corev1.Pod{kcmPod("--v=2")}); len(got) != 0 {
		t.Errorf("sources without a CIDR: %+v", got)
	}
}

func TestCheckInsideClusterCIDR(t *testing.T) {
	pp := netip.MustParsePrefix
	sources := []CIDRSource{
		{Source: "kubeadm", CIDRs: []netip.Prefix{pp("10.0.0.0/16"), pp("fd00::/48")}},
		{Source: "kube-proxy", CIDRs: []netip.Prefix{pp("10.0.0.0/17")}}, // disagrees
	}
	for _, tc := range []struct {
		cidr    string
		sources []CIDRSource
		want    string
	}{
		{"10.0.0.0/18", sources, ""},
		{"10.0.128.0/18", sources, "outside the cluster pod CIDR 10.0.0.0/17 (kube-proxy)"},
		{"192.168.0.0/16", sources, "outside the cluster pod CIDR 10.0.0.0/16 (kubeadm)"},
		{"fd00:0:0:1::/64", sources, ""},
		{"fd01::/64", sources, "outside the cluster pod CIDR fd00::/48"},
		{"fd00::/64", sources[1:], "IPv6 pod CIDR could not be discovered"},
		{"10.0.0.0/16", nil, "pass it as clusterCIDR"},
	} {
		got := strings.Join(CheckInsideClusterCIDR(pp(tc.cidr), tc.sources), "; ")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.cidr, got, tc.want)
		}
	}
}
