package cni

import (
	"net"
	"reflect"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	cnet "github.com/projectcalico/calico/libcalico-go/lib/net"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// calicoManifestConfig is cni_network_config as calico.yaml (v3.28) ships it.
const calicoManifestConfig = `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "calico-ipam"
      },
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}
  ]
}`

func ptr(s string) *string { return &s }

func TestParseNetConf(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      NetConf
		wantErr   string
	}{
		{name: "calico.yaml", raw: calicoManifestConfig, want: DefaultNetConf},
		{
			name: "pinned pools and dual stack",
			raw:  `{"name":"net","plugins":[{"type":"calico","ipam":{"type":"calico-ipam","ipv4_pools":["default-ipv4-ippool"],"assign_ipv6":"true"}}]}`,
			want: NetConf{Name: "net", IPAM: IPAMConf{Type: "calico-ipam", IPv4Pools: []string{"default-ipv4-ippool"}, AssignIPv6: ptr("true")}},
		},
		{
			name: "single network config",
			raw:  `{"name":"net","type":"calico","ipam":{"type":"calico-ipam"}}`,
			want: NetConf{Name: "net", IPAM: IPAMConf{Type: "calico-ipam"}},
		},
		{name: "no calico plugin", raw: `{"name":"net","plugins":[{"type":"flannel"}]}`, wantErr: "no calico plugin"},
		{name: "not JSON", raw: `{`, wantErr: "parsing CNI network config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNetConf(tc.raw)
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	for _, tc := range []struct {
		conf       IPAMConf
		num4, num6 int
	}{
		{IPAMConf{}, 1, 0},
		{IPAMConf{AssignIPv6: ptr("true")}, 1, 1},
		{IPAMConf{AssignIPv4: ptr("false"), AssignIPv6: ptr("true")}, 0, 1},
		{IPAMConf{AssignIPv4: ptr("true"), AssignIPv6: ptr("false")}, 1, 0},
	} {
		if n4, n6 := tc.conf.Counts(); n4 != tc.num4 || n6 != tc.num6 {
			t.Errorf("%+v: Counts() = %d, %d; want %d, %d", tc.conf, n4, n6, tc.num4, tc.num6)
		}
	}
}

func TestRequestedPools(t *testing.T) {
	conf := IPAMConf{IPv4Pools: []string{"from-config"}, IPv6Pools: []string{"v6-config"}}
	for _, tc := range []struct {
		name    string
		conf    IPAMConf
		ns, pod map[string]string
		wantV4  []string
		wantV6  []string
		wantErr string
	}{
		{name: "nothing pinned", wantV4: nil, wantV6: nil},
		{name: "CNI config", conf: conf, wantV4: []string{"from-config"}, wantV6: []string{"v6-config"}},
		{
			name: "namespace overrides config", conf: conf,
			ns:     map[string]string{AnnotationIPv4Pools: `["ns-pool"]`},
			wantV4: []string{"ns-pool"}, wantV6: []string{"v6-config"},
		},
		{
			name: "pod overrides namespace, per family", conf: conf,
			ns:     map[string]string{AnnotationIPv4Pools: `["ns-pool"]`, AnnotationIPv6Pools: `["ns-v6"]`},
			pod:    map[string]string{AnnotationIPv4Pools: `["10.0.0.0/16"]`},
			wantV4: []string{"10.0.0.0/16"}, wantV6: []string{"ns-v6"},
		},
		{name: "empty pod annotation is ignored", ns: map[string]string{AnnotationIPv4Pools: `["ns-pool"]`}, pod: map[string]string{AnnotationIPv4Pools: ""}, wantV4: []string{"ns-pool"}},
		{name: "bad JSON", pod: map[string]string{AnnotationIPv4Pools: `ns-pool`}, wantErr: "pod annotation cni.projectcalico.org/ipv4pools"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v4, v6, err := RequestedPools(tc.conf, tc.ns, tc.pod)
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if !reflect.DeepEqual(v4, tc.wantV4) || !reflect.DeepEqual(v6, tc.wantV6) {
				t.Errorf("got %v %v, want %v %v", v4, v6, tc.wantV4, tc.wantV6)
			}
		})
	}
}

func TestResolvePools(t *testing.T) {
	pools := []v3.IPPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "default-ipv4-ippool"}, Spec: v3.IPPoolSpec{CIDR: "192.168.0.0/16"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "v6"}, Spec: v3.IPPoolSpec{CIDR: "fd00::/48"}},
	}
	for _, tc := range []struct {
		name      string
		requested []string
		v4        bool
		want      []string
		wantErr   string
	}{
		{name: "none", v4: true, want: []string{}},
		{name: "by name", requested: []string{"default-ipv4-ippool"}, v4: true, want: []string{"192.168.0.0/16"}},
		{name: "by CIDR, even of no pool", requested: []string{"10.9.0.0/16"}, v4: true, want: []string{"10.9.0.0/16"}},
		{name: "unknown name", requested: []string{"gone"}, v4: true, wantErr: `error parsing pool "gone"`},
		{name: "wrong family", requested: []string{"v6"}, v4: true, wantErr: "isn't a IPv4 address"},
		{name: "v6 by name", requested: []string{"v6"}, v4: false, want: []string{"fd00::/48"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolvePools(pools, tc.requested, tc.v4)
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			gotStrings := []string{}
			for _, n := range got {
				gotStrings = append(gotStrings, n.String())
			}
			if !reflect.DeepEqual(gotStrings, tc.want) {
				t.Errorf("got %v, want %v", gotStrings, tc.want)
			}
		})
	}
}

func TestWantedAction(t *testing.T) {
	now := metav1.Now()
	pod := func(mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "worker-1"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
		mutate(p)
		return p
	}
	withIPs := func(ips string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationPodIPs: ips} }
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want Action
	}{
		{"unscheduled", pod(func(p *corev1.Pod) { p.Spec.NodeName = "" }), None},
		{"host network", pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), None},
		{"new pod", pod(func(*corev1.Pod) {}), Add},
		{"has addresses", pod(withIPs("192.168.0.1/32")), None},
		{"terminating with addresses", pod(func(p *corev1.Pod) { withIPs("192.168.0.1/32")(p); p.DeletionTimestamp = &now }), Del},
		{"terminating, torn down", pod(func(p *corev1.Pod) { withIPs("")(p); p.DeletionTimestamp = &now }), None},
		{"terminating, never had addresses", pod(func(p *corev1.Pod) { p.DeletionTimestamp = &now }), None},
		{"succeeded with addresses", pod(func(p *corev1.Pod) { withIPs("192.168.0.1/32")(p); p.Status.Phase = corev1.PodSucceeded }), Del},
		{"failed, never had addresses", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), None},
	} {
		if got := WantedAction(tc.pod); got != tc.want {
			t.Errorf("%s: WantedAction = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHostCIDRs(t *testing.T) {
	// AutoAssign returns each address with its block's mask.
	got := hostCIDRs([]cnet.IPNet{
		{IPNet: net.IPNet{IP: net.ParseIP("192.168.3.4"), Mask: net.CIDRMask(26, 32)}},
		{IPNet: net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(122, 128)}},
	})
	want := []string{"192.168.3.4/32", "fd00::5/128"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hostCIDRs = %v, want %v", got, want)
	}
}

// failedAsWanted checks err against a table case: with want set, err must contain
// it and the case is done (true); without, err must be nil.
func failedAsWanted(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	return true
}
