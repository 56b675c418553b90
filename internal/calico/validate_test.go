package calico

import (
	"net/netip"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
)

func TestValidateSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec v3.IPPoolSpec
		want string // substring of the problems; "" = valid
	}{
		{"valid v4", v3.IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "Always"}, ""},
		{"valid v6 vxlan", v3.IPPoolSpec{CIDR: "fd00::/108", VXLANMode: "Always"}, ""},
		{"ipip and vxlan", v3.IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "Always", VXLANMode: "CrossSubnet"}, "cannot both be enabled"},
		{"ipip on v6", v3.IPPoolSpec{CIDR: "fd00::/108", IPIPMode: "Always"}, "IPv6"},
		{"smaller than a block", v3.IPPoolSpec{CIDR: "10.0.0.0/28"}, "smaller than one block (/26)"},
		{"smaller than a block, disabled", v3.IPPoolSpec{CIDR: "10.0.0.0/28", Disabled: true}, "smaller than one block"},
		{"block size range v4", v3.IPPoolSpec{CIDR: "10.0.0.0/16", BlockSize: 19}, "outside the IPv4 range 20-32"},
		{"block size range v6", v3.IPPoolSpec{CIDR: "fd00::/64", BlockSize: 112}, "outside the IPv6 range 116-128"},
		{"not strictly masked", v3.IPPoolSpec{CIDR: "10.0.0.1/16"}, "strictly masked"},
		{"link local", v3.IPPoolSpec{CIDR: "169.254.0.0/16"}, "Link Local"},
		{"bad mode", v3.IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "Sometimes"}, "IPIPMode"},
		{"bad selector", v3.IPPoolSpec{CIDR: "10.0.0.0/16", NodeSelector: "zone =="}, "NodeSelector"},
		{"unknown use", v3.IPPoolSpec{CIDR: "10.0.0.0/16", AllowedUses: []v3.IPPoolAllowedUse{"LoadBalancer"}}, "unknown use: LoadBalancer"},
		{"bad cidr", v3.IPPoolSpec{CIDR: "10.0.0/16"}, "invalid CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(ValidateSpec("p", WithDefaults(tc.spec)), "; ")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckNewPool(t *testing.T) {
	pp := netip.MustParsePrefix
	pools := []Pool{testPool("default", "192.168.0.0/16", ipip), testPool("v6", "fd00::/48", nil)}
	blocks := []Block{{CIDR: pp("10.0.0.0/26")}, {CIDR: pp("10.1.0.0/24")}}
	for _, tc := range []struct {
		name, cidr string
		blockSize  int
		want       string
	}{
		{"disjoint", "10.2.0.0/16", 26, ""},
		{"overlap inside", "192.168.10.0/24", 26, "overlaps pool default (192.168.0.0/16)"},
		{"overlap around", "192.0.0.0/8", 26, "overlaps pool default"},
		{"v6 overlap", "fd00:0:0:1::/64", 122, "overlaps pool v6"},
		{"same name is not an overlap", "192.168.0.0/16", 26, ""},
		{"leftover block of same size", "10.0.0.0/16", 26, ""},
		{"leftover block of another size", "10.1.0.0/16", 26, "block size /24, not /26"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "new"
			if tc.name == "same name is not an overlap" {
				name = "default"
			}
			got := strings.Join(CheckNewPool(name, pp(tc.cidr), tc.blockSize, pools, blocks), "; ")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckImmutable(t *testing.T) {
	p := testPool("a", "10.0.0.0/16", nil)
	if got := CheckImmutable(&p, netip.MustParsePrefix("10.0.0.0/16"), 26); got != nil {
		t.Errorf("same: %v", got)
	}
	got := strings.Join(CheckImmutable(&p, netip.MustParsePrefix("10.0.0.0/17"), 24), "; ")
	if !strings.Contains(got, "cidr is immutable") || !strings.Contains(got, "blockSize is immutable") {
		t.Errorf("changed: %q", got)
	}
}
