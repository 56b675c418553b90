package preflight

import (
	"strings"
	"testing"
)

// The moved pods take the new pool's behaviour: each difference is named.
func TestPoolBehaviour(t *testing.T) {
	for _, tc := range []struct {
		name  string
		with  map[string]any // the ensurePool step's spec fields over the defaults
		want  string
		texts []string
	}{
		{name: "same behaviour", with: map[string]any{"ipipMode": "Always", "natOutgoing": true}},
		{name: "loses NAT", with: map[string]any{"ipipMode": "Always"}, want: "warn pool-behaviour",
			texts: []string{"natOutgoing true → false", "egress"}},
		{name: "IPIP to VXLAN", with: map[string]any{"ipipMode": "Never", "vxlanMode": "Always", "natOutgoing": true}, want: "warn pool-behaviour",
			texts: []string{"encapsulation ipipMode Always/vxlanMode Never → ipipMode Never/vxlanMode Always", "both tunnel kinds"}},
		{name: "not exported: the bgp-export check's", with: map[string]any{"ipipMode": "Always", "natOutgoing": true, "disableBGPExport": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.reader.pools[0].Spec.NATOutgoing = true // the old pool NATs, as calico.yaml's default pool does
			ensure := map[string]any{"name": "new", "cidr": "10.0.1.0/24", "blockSize": 26, "ipipMode": "Never", "vxlanMode": "Never", "natOutgoing": false, "disableBGPExport": false}
			for k, v := range tc.with {
				ensure[k] = v
			}
			w.steps = migrationSteps(ensure)
			var got []Finding
			for _, f := range w.run(t) {
				if f.ID == "pool-behaviour" {
					got = append(got, f)
				}
			}
			if s := summary(got); s != tc.want {
				t.Fatalf("findings %q, want %q:\n%s", s, tc.want, dump(got))
			}
			for _, text := range tc.texts {
				if !strings.Contains(dump(got), text) {
					t.Errorf("findings lack %q:\n%s", text, dump(got))
				}
			}
		})
	}
}
