package calico

import (
	"net/netip"
	"testing"
)

func TestContainsAndOverlap(t *testing.T) {
	pp := netip.MustParsePrefix
	for _, tc := range []struct {
		outer, inner string
		contains     bool
		overlaps     bool
	}{
		{"10.0.0.0/16", "10.0.1.0/26", true, true},
		{"10.0.0.0/16", "10.0.0.0/16", true, true},
		{"10.0.0.0/16", "10.0.0.0/8", false, true}, // bigger: overlaps, not inside
		{"10.0.0.0/16", "10.1.0.0/16", false, false},
		{"192.168.0.0/16", "10.0.0.0/16", false, false},
		{"fd00::/48", "fd00:0:0:1::/64", true, true},
		{"fd00::/48", "fd01::/64", false, false},
		{"10.0.0.0/16", "fd00::/64", false, false}, // families never mix
	} {
		o, i := pp(tc.outer), pp(tc.inner)
		if got := Contains(o, i); got != tc.contains {
			t.Errorf("Contains(%s, %s) = %v, want %v", o, i, got, tc.contains)
		}
		if got := o.Overlaps(i); got != tc.overlaps {
			t.Errorf("Overlaps(%s, %s) = %v, want %v", o, i, got, tc.overlaps)
		}
	}
}

func TestParseCIDRCanonicalises(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/16":             "10.0.0.0/16",
		" 10.0.0.0/16 ":           "10.0.0.0/16",
		"10.0.0.5/16":             "10.0.0.0/16", // stored by a raw write: masked like Calico
		"FD00:0000:0:0::/48":      "fd00::/48",   // calico#11311
		"2001:db8:0:0:0:0:0:0/64": "2001:db8::/64",
	} {
		got, err := ParseCIDR(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0", "10.0.0.0/33", "fe80::/64%eth0", "nonsense"} {
		if _, err := ParseCIDR(bad); err == nil {
			t.Errorf("ParseCIDR(%q) accepted", bad)
		}
	}
}

func TestNthAddr(t *testing.T) {
	pp := netip.MustParsePrefix
	for _, tc := range []struct {
		prefix string
		n      int
		want   string // "" = out of range
	}{
		{"10.0.0.0/26", 0, "10.0.0.0"},
		{"10.0.0.0/26", 63, "10.0.0.63"},
		{"10.0.0.0/26", 64, ""},
		{"10.0.0.192/26", 5, "10.0.0.197"},
		{"10.0.255.192/26", 63, "10.0.255.255"},
		{"10.0.0.0/20", 300, "10.0.1.44"},
		{"fd00::/122", 17, "fd00::11"},
		{"fd00::ffc0/122", 63, "fd00::ffff"},
		{"10.0.0.0/26", -1, ""},
		{"::/64", -1, ""}, // not ::1, which GetIndexedIP alone returns (big.Int.Bytes drops the sign)
		{"fd00::/64", 1 << 40, "fd00::100:0:0"},
		{"10.0.0.0/8", 1 << 24, ""},
	} {
		got, ok := nthAddr(pp(tc.prefix), tc.n)
		if tc.want == "" {
			if ok {
				t.Errorf("nthAddr(%s, %d) = %s, want out of range", tc.prefix, tc.n, got)
			}
			continue
		}
		if !ok || got.String() != tc.want {
			t.Errorf("nthAddr(%s, %d) = %s %v, want %s", tc.prefix, tc.n, got, ok, tc.want)
		}
	}
}
