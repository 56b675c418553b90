package operator

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func kubeadmConfigMap(podSubnet string) *corev1.ConfigMap {
	return &corev1.ConfigMap{Data: map[string]string{"ClusterConfiguration": "networking:\n  podSubnet: " + podSubnet + "\n  serviceSubnet: 10.96.0.0/12\n"}}
}

func calicoInstallation(pools []IPPool) *Installation {
	inst := &Installation{Spec: InstallationSpec{CNI: &CNISpec{Type: "Calico", IPAM: &IPAMSpec{Type: "Calico"}}}}
	if pools != nil {
		inst.Spec.CalicoNetwork = &CalicoNetworkSpec{IPPools: pools}
	}
	return inst
}

// defaulted is an IPv4 entry with every default the operator fills in.
func defaulted(name, cidr string) IPPool {
	return IPPool{Name: name, CIDR: cidr, Encapsulation: EncapsulationIPIP, NATOutgoing: NATOutgoingEnabled, NodeSelector: "all()",
		BlockSize: ptr(int32(26)), DisableBGPExport: ptr(false), DisableNewAllocations: ptr(false), AllowedUses: []string{"Workload", "Tunnel"}}
}

func TestFillDefaults(t *testing.T) {
	v6 := IPPool{Name: "default-ipv6-ippool", CIDR: "fd00:10::/48", Encapsulation: EncapsulationNone, NATOutgoing: NATOutgoingDisabled, NodeSelector: "all()",
		BlockSize: ptr(int32(122)), DisableBGPExport: ptr(false), DisableNewAllocations: ptr(false), AllowedUses: []string{"Workload", "Tunnel"}}
	existing := []Pool{{Name: "legacy", Spec: PoolSpec{CIDR: "192.168.0.0/16"}}}
	for _, tc := range []struct {
		name    string
		pools   []IPPool // nil: not listed
		current []Pool
		kubeadm *corev1.ConfigMap
		want    []IPPool
		wantErr string
	}{
		{name: "fresh kubeadm cluster, nothing listed: kubeadm's podSubnet",
			kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{defaulted("default-ipv4-ippool", "10.0.0.0/16")}},
		{name: "fresh, no kubeadm: 192.168.0.0/16",
			want: []IPPool{defaulted("default-ipv4-ippool", "192.168.0.0/16")}},
		{name: "fresh, listed inside podSubnet", pools: []IPPool{{CIDR: "10.0.0.0/17"}},
			kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{defaulted("default-ipv4-ippool", "10.0.0.0/17")}},
		{name: "fresh, listed outside podSubnet: the operator refuses", pools: []IPPool{{CIDR: "192.168.0.0/16"}},
			kubeadm: kubeadmConfigMap("10.0.0.0/16"), wantErr: "IPPool 192.168.0.0/16 is not within the platform's configured pod network CIDR(s) [10.0.0.0/16]"},
		{name: "pools exist, nothing listed: manage none", current: existing, kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{}},
		{name: "pools exist: no podSubnet check; the name of the pool with that CIDR", pools: []IPPool{{CIDR: "192.168.0.0/16"}},
			current: existing, kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{defaulted("legacy", "192.168.0.0/16")}},
		{name: "several pools are named after their CIDR", pools: []IPPool{{CIDR: "10.0.0.0/16"}, {CIDR: "10.1.0.0/16"}},
			current: existing, want: []IPPool{defaulted("10.0.0.0-16", "10.0.0.0/16"), defaulted("10.1.0.0-16", "10.1.0.0/16")}},
		{name: "dual stack gets the default names", pools: []IPPool{{CIDR: "10.0.0.0/16"}, {CIDR: "fd00:10::/48"}},
			current: existing, want: []IPPool{defaulted("default-ipv4-ippool", "10.0.0.0/16"), v6}},
		{name: "dual-stack podSubnet, nothing listed", kubeadm: kubeadmConfigMap("10.0.0.0/16,fd00:10::/48"),
			want: []IPPool{defaulted("default-ipv4-ippool", "10.0.0.0/16"), v6}},
		{name: "explicit values are kept", pools: []IPPool{{Name: "p", CIDR: "10.0.0.0/16", Encapsulation: EncapsulationVXLAN, BlockSize: ptr(int32(24)), DisableNewAllocations: ptr(true)}},
			current: existing, want: []IPPool{func() IPPool {
				p := defaulted("p", "10.0.0.0/16")
				p.Encapsulation, p.BlockSize, p.DisableNewAllocations = EncapsulationVXLAN, ptr(int32(24)), ptr(true)
				return p
			}()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := calicoInstallation(tc.pools)
			err := fillDefaults(inst, tc.current, tc.kubeadm)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := inst.Spec.CalicoNetwork.IPPools; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("pools\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestValidatePools(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*IPPool)
		wantErr string
	}{
		{"valid", func(*IPPool) {}, ""},
		{"bad encapsulation", func(p *IPPool) { p.Encapsulation = "GRE" }, "invalid for ipPool.encapsulation"},
		{"bad NAT", func(p *IPPool) { p.NATOutgoing = "Yes" }, "invalid for natOutgoing"},
		{"block size", func(p *IPPool) { p.BlockSize = ptr(int32(19)) }, "block size must be between 20 and 32"},
		{"pool smaller than a block", func(p *IPPool) { p.CIDR = "10.0.0.0/28" }, "IP pool size is too small"},
		{"load balancer with others", func(p *IPPool) { p.AllowedUses = []string{"LoadBalancer", "Workload"} }, "cannot be used with Workload/Tunnel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := defaulted("p", "10.0.0.0/16")
			tc.mutate(&p)
			err := validatePools(calicoInstallation([]IPPool{p}))
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	twice := calicoInstallation([]IPPool{defaulted("a", "10.0.0.0/16"), defaulted("b", "10.0.0.0/16")})
	if err := validatePools(twice); err == nil || !strings.Contains(err.Error(), "specified more than once") {
		t.Errorf("duplicate CIDR: %v", err)
	}
}

func TestPoolSpecConversion(t *testing.T) {
	for _, tc := range []struct {
		entry IPPool
		want  PoolSpec
	}{
		{defaulted("a", "10.0.0.0/16"), PoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}},
		{func() IPPool {
			p := defaulted("b", "10.1.0.0/16")
			p.Encapsulation, p.NATOutgoing, p.DisableNewAllocations = EncapsulationVXLANCrossSubnet, NATOutgoingDisabled, ptr(true)
			return p
		}(), PoolSpec{CIDR: "10.1.0.0/16", IPIPMode: "Never", VXLANMode: "CrossSubnet", Disabled: true, BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}},
	} {
		got := toPoolSpec(tc.entry)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("toPoolSpec(%+v)\n got %+v\nwant %+v", tc.entry, got, tc.want)
		}
		// The inverse gives the entry back: how the operator recognises a pool it may adopt.
		if back := fromPoolSpec(tc.entry.Name, got); !reflect.DeepEqual(back, tc.entry) {
			t.Errorf("fromPoolSpec(toPoolSpec(%s)) = %+v", tc.entry.Name, back)
		}
	}
	// As in the operator, a pool without encapsulation does not round-trip
	// ("None" becomes ""), so such a pool is never adopted, only managed once labelled.
	none := defaulted("c", "10.2.0.0/16")
	none.Encapsulation = EncapsulationNone
	if back := fromPoolSpec("c", toPoolSpec(none)); back.Encapsulation != "" {
		t.Errorf("encapsulation None came back as %q", back.Encapsulation)
	}
}

func TestCIDRToName(t *testing.T) {
	for cidr, want := range map[string]string{"10.1.0.0/16": "10.1.0.0-16", "fe80::/64": "fe80.0000.0000.0000.0000.0000.0000.0000-64"} {
		if got, err := cidrToName(cidr); err != nil || got != want {
			t.Errorf("cidrToName(%s) = %q, %v; want %q", cidr, got, err, want)
		}
	}
}
