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

// versions are the releases the tests run against.
var versions = []Version{V1_34_13, V1_40_0}

// defaulted is an IPv4 entry with every default the operator v fills in.
func defaulted(v Version, name, cidr string) IPPool {
	p := IPPool{Name: name, CIDR: cidr, Encapsulation: EncapsulationIPIP, NATOutgoing: NATOutgoingEnabled, NodeSelector: "all()",
		BlockSize: ptr(int32(26)), DisableBGPExport: ptr(false), AllowedUses: []string{"Workload", "Tunnel"}}
	if v.DisableNewAllocations {
		p.DisableNewAllocations = ptr(false)
	}
	return p
}

func TestFillDefaults(t *testing.T) {
	for _, v := range versions {
		v6 := IPPool{Name: "default-ipv6-ippool", CIDR: "fd00:10::/48", Encapsulation: EncapsulationNone, NATOutgoing: NATOutgoingDisabled, NodeSelector: "all()",
			BlockSize: ptr(int32(122)), DisableBGPExport: ptr(false), AllowedUses: []string{"Workload", "Tunnel"}}
		if v.DisableNewAllocations {
			v6.DisableNewAllocations = ptr(false)
		}
		existing := []Pool{{Name: "legacy", Spec: PoolSpec{CIDR: "192.168.0.0/16"}}}
		explicit := IPPool{Name: "p", CIDR: "10.0.0.0/16", Encapsulation: EncapsulationVXLAN, BlockSize: ptr(int32(24))}
		explicitWant := defaulted(v, "p", "10.0.0.0/16")
		explicitWant.Encapsulation, explicitWant.BlockSize = EncapsulationVXLAN, ptr(int32(24))
		if v.DisableNewAllocations {
			explicit.DisableNewAllocations, explicitWant.DisableNewAllocations = ptr(true), ptr(true)
		}
		for _, tc := range []struct {
			name    string
			pools   []IPPool // nil: not listed
			current []Pool
			kubeadm *corev1.ConfigMap
			want    []IPPool
			wantErr string
		}{
			{name: "fresh kubeadm cluster, nothing listed: kubeadm's podSubnet",
				kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{defaulted(v, "default-ipv4-ippool", "10.0.0.0/16")}},
			{name: "fresh, no kubeadm: 192.168.0.0/16",
				want: []IPPool{defaulted(v, "default-ipv4-ippool", "192.168.0.0/16")}},
			{name: "fresh, listed inside podSubnet", pools: []IPPool{{CIDR: "10.0.0.0/17"}},
				kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{defaulted(v, "default-ipv4-ippool", "10.0.0.0/17")}},
			{name: "fresh, listed outside podSubnet: the operator refuses", pools: []IPPool{{CIDR: "192.168.0.0/16"}},
				kubeadm: kubeadmConfigMap("10.0.0.0/16"), wantErr: "IPPool 192.168.0.0/16 is not within the platform's configured pod network CIDR(s) [10.0.0.0/16]"},
			{name: "pools exist, nothing listed: manage none", current: existing, kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{}},
			{name: "pools exist: no podSubnet check; the name of the pool with that CIDR", pools: []IPPool{{CIDR: "192.168.0.0/16"}},
				current: existing, kubeadm: kubeadmConfigMap("10.0.0.0/16"), want: []IPPool{defaulted(v, "legacy", "192.168.0.0/16")}},
			{name: "several pools are named after their CIDR", pools: []IPPool{{CIDR: "10.0.0.0/16"}, {CIDR: "10.1.0.0/16"}},
				current: existing, want: []IPPool{defaulted(v, "10.0.0.0-16", "10.0.0.0/16"), defaulted(v, "10.1.0.0-16", "10.1.0.0/16")}},
			{name: "dual stack gets the default names", pools: []IPPool{{CIDR: "10.0.0.0/16"}, {CIDR: "fd00:10::/48"}},
				current: existing, want: []IPPool{defaulted(v, "default-ipv4-ippool", "10.0.0.0/16"), v6}},
			{name: "dual-stack podSubnet, nothing listed", kubeadm: kubeadmConfigMap("10.0.0.0/16,fd00:10::/48"),
				want: []IPPool{defaulted(v, "default-ipv4-ippool", "10.0.0.0/16"), v6}},
			{name: "explicit values are kept", pools: []IPPool{explicit}, current: existing, want: []IPPool{explicitWant}},
		} {
			t.Run(v.Name+"/"+tc.name, func(t *testing.T) {
				inst := calicoInstallation(tc.pools)
				err := fillDefaults(v, inst, tc.current, tc.kubeadm)
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
}

func TestValidatePools(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*IPPool)
		// wantErr per release, "" = valid.
		wantErr map[string]string
	}{
		{"valid", func(*IPPool) {}, nil},
		{"bad encapsulation", func(p *IPPool) { p.Encapsulation = "GRE" }, both("invalid for ipPool.encapsulation")},
		{"bad NAT", func(p *IPPool) { p.NATOutgoing = "Yes" }, both("invalid for natOutgoing")},
		{"block size", func(p *IPPool) { p.BlockSize = ptr(int32(19)) }, both("IPv4 pool block size must be greater than 19 and less than or equal to 32")},
		{"pool smaller than a block", func(p *IPPool) { p.CIDR = "10.0.0.0/28" }, both("IP pool size is too small")},
		{"empty selector", func(p *IPPool) { p.NodeSelector = "" }, both("nodeSelector should not be empty")},
		{"a selector selecting nothing is valid", func(p *IPPool) { p.NodeSelector = "!all()" }, nil},
		// v1.34.13 knows no LoadBalancer use (its ValidatePools does not look at allowedUses).
		{"load balancer with others", func(p *IPPool) { p.AllowedUses = []string{"LoadBalancer", "Workload"} },
			map[string]string{V1_40_0.Name: "cannot be used with Workload/Tunnel"}},
		{"load balancer with encapsulation", func(p *IPPool) { p.AllowedUses = []string{"LoadBalancer"} },
			map[string]string{V1_40_0.Name: "encapsulation must be none if allowedUse is LoadBalancer"}},
	} {
		for _, v := range versions {
			t.Run(v.Name+"/"+tc.name, func(t *testing.T) {
				p := defaulted(v, "p", "10.0.0.0/16")
				tc.mutate(&p)
				err := validatePools(v, calicoInstallation([]IPPool{p}))
				want := tc.wantErr[v.Name]
				if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
					t.Errorf("err = %v, want %q", err, want)
				}
			})
		}
	}
	for _, v := range versions {
		twice := calicoInstallation([]IPPool{defaulted(v, "a", "10.0.0.0/16"), defaulted(v, "b", "10.0.0.0/16")})
		if err := validatePools(v, twice); err == nil || !strings.Contains(err.Error(), "specified more than once") {
			t.Errorf("%s: duplicate CIDR: %v", v.Name, err)
		}
	}
}

func both(msg string) map[string]string {
	return map[string]string{V1_34_13.Name: msg, V1_40_0.Name: msg}
}

// ToProjectCalicoV1 and FromProjectCalicoV1 per release: v1.34.13 never writes
// spec.disabled and reads natOutgoing false back as ""; v1.40.0 maps
// disableNewAllocations both ways and reads natOutgoing false as "Disabled".
func TestPoolSpecConversion(t *testing.T) {
	vxlanNoNAT := func(v Version) IPPool {
		p := defaulted(v, "b", "10.1.0.0/16")
		p.Encapsulation, p.NATOutgoing = EncapsulationVXLANCrossSubnet, NATOutgoingDisabled
		return p
	}
	disabled := func(v Version) IPPool {
		p := defaulted(v, "d", "10.3.0.0/16")
		p.DisableNewAllocations = ptr(true) // at v1.34.13 only if the CRD kept it: it prunes it
		return p
	}
	for _, tc := range []struct {
		name  string
		v     Version
		entry IPPool
		want  PoolSpec
		// roundTrip: FromProjectCalicoV1(ToProjectCalicoV1(entry)) == entry,
		// i.e. an unlabelled pool written so would be adopted.
		roundTrip bool
	}{
		{"defaulted", V1_34_13, defaulted(V1_34_13, "a", "10.0.0.0/16"),
			PoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}, true},
		{"defaulted", V1_40_0, defaulted(V1_40_0, "a", "10.0.0.0/16"),
			PoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}, true},
		{"NAT off: never adopted at v1.34.13", V1_34_13, vxlanNoNAT(V1_34_13),
			PoolSpec{CIDR: "10.1.0.0/16", IPIPMode: "Never", VXLANMode: "CrossSubnet", BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}, false},
		{"NAT off", V1_40_0, vxlanNoNAT(V1_40_0),
			PoolSpec{CIDR: "10.1.0.0/16", IPIPMode: "Never", VXLANMode: "CrossSubnet", BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}, true},
		{"disableNewAllocations never becomes disabled at v1.34.13", V1_34_13, disabled(V1_34_13),
			PoolSpec{CIDR: "10.3.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}, false},
		{"disableNewAllocations is disabled", V1_40_0, disabled(V1_40_0),
			PoolSpec{CIDR: "10.3.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, Disabled: true, BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}, true},
		{"a !all() selector is written as is", V1_34_13, func() IPPool { p := defaulted(V1_34_13, "s", "10.4.0.0/16"); p.NodeSelector = "!all()"; return p }(),
			PoolSpec{CIDR: "10.4.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, BlockSize: 26, NodeSelector: "!all()", AllowedUses: []string{"Workload", "Tunnel"}}, true},
	} {
		t.Run(tc.v.Name+"/"+tc.name, func(t *testing.T) {
			got := toPoolSpec(tc.v, tc.entry)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("toPoolSpec(%+v)\n got %+v\nwant %+v", tc.entry, got, tc.want)
			}
			back := fromPoolSpec(tc.v, tc.entry.Name, got)
			if rt := reflect.DeepEqual(back, tc.entry); rt != tc.roundTrip {
				t.Errorf("fromPoolSpec(toPoolSpec(%s)) = %+v: round trip %v, want %v", tc.entry.Name, back, rt, tc.roundTrip)
			}
			if back.BlockSize == nil || back.DisableBGPExport == nil {
				t.Errorf("fromPoolSpec left blockSize or disableBGPExport nil: %+v", back)
			}
		})
	}
	// As in the operator, a pool without encapsulation does not round-trip
	// ("None" becomes ""), so such a pool is never adopted, only managed once labelled.
	for _, v := range versions {
		none := defaulted(v, "c", "10.2.0.0/16")
		none.Encapsulation = EncapsulationNone
		if back := fromPoolSpec(v, "c", toPoolSpec(v, none)); back.Encapsulation != "" {
			t.Errorf("%s: encapsulation None came back as %q", v.Name, back.Encapsulation)
		}
	}
}

// Which pools the operator treats as its own (pool_controller.go:234-271).
func TestOwnership(t *testing.T) {
	natOn := PoolSpec{CIDR: "192.168.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, BlockSize: 26, NodeSelector: "all()", AllowedUses: []string{"Workload", "Tunnel"}}
	natOff := natOn
	natOff.NATOutgoing = false
	managed := map[string]string{ManagedByLabel: ManagedByValue}
	for _, tc := range []struct {
		name        string
		v           Version
		entry       func(Version) IPPool
		pool        Pool
		ours, other bool
	}{
		{"labelled: ours whatever its spec", V1_34_13, func(v Version) IPPool { return defaulted(v, "p", "192.168.0.0/16") },
			Pool{Name: "p", Labels: managed, Spec: PoolSpec{CIDR: "192.168.0.0/16", Disabled: true}}, true, false},
		{"unlabelled, exact match: adopted", V1_34_13, func(v Version) IPPool { return defaulted(v, "p", "192.168.0.0/16") },
			Pool{Name: "p", Spec: natOn}, true, false},
		{"unlabelled, exact match: adopted", V1_40_0, func(v Version) IPPool { return defaulted(v, "p", "192.168.0.0/16") },
			Pool{Name: "p", Spec: natOn}, true, false},
		{"unlabelled NAT-off pool: not ours at v1.34.13", V1_34_13,
			func(v Version) IPPool {
				p := defaulted(v, "p", "192.168.0.0/16")
				p.NATOutgoing = NATOutgoingDisabled
				return p
			},
			Pool{Name: "p", Spec: natOff}, false, true},
		{"unlabelled NAT-off pool: adopted at v1.40.0", V1_40_0,
			func(v Version) IPPool {
				p := defaulted(v, "p", "192.168.0.0/16")
				p.NATOutgoing = NATOutgoingDisabled
				return p
			},
			Pool{Name: "p", Spec: natOff}, true, false},
		// FromProjectCalicoV1 ignores disabled at v1.34.13: a disabled pool is
		// adopted, and the next write (disabled never set) re-enables it.
		{"unlabelled, disabled: adopted at v1.34.13", V1_34_13, func(v Version) IPPool { return defaulted(v, "p", "192.168.0.0/16") },
			Pool{Name: "p", Spec: func() PoolSpec { s := natOn; s.Disabled = true; return s }()}, true, false},
		{"unlabelled, disabled, entry enabled: not ours at v1.40.0", V1_40_0, func(v Version) IPPool { return defaulted(v, "p", "192.168.0.0/16") },
			Pool{Name: "p", Spec: func() PoolSpec { s := natOn; s.Disabled = true; return s }()}, false, true},
		{"unlabelled, another name: not ours", V1_34_13, func(v Version) IPPool { return defaulted(v, "p", "192.168.0.0/16") },
			Pool{Name: "q", Spec: natOn}, false, true},
	} {
		t.Run(tc.v.Name+"/"+tc.name, func(t *testing.T) {
			ours, notOurs := ownership(tc.v, []IPPool{tc.entry(tc.v)}, []Pool{tc.pool})
			if _, ok := ours[tc.pool.Spec.CIDR]; ok != tc.ours || notOurs[tc.pool.Spec.CIDR] != tc.other {
				t.Errorf("ours=%v notOurs=%v, want ours=%v notOurs=%v", ok, notOurs[tc.pool.Spec.CIDR], tc.ours, tc.other)
			}
		})
	}
}

func TestCIDRToName(t *testing.T) {
	for cidr, want := range map[string]string{"10.1.0.0/16": "10.1.0.0-16", "fe80::/64": "fe80.0000.0000.0000.0000.0000.0000.0000-64"} {
		if got, err := cidrToName(cidr); err != nil || got != want {
			t.Errorf("cidrToName(%s) = %q, %v; want %q", cidr, got, err, want)
		}
	}
}
