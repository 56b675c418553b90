package check

import (
	"strings"
	"testing"

	"github.com/runbookdev/runbook/internal/value"
)

// TestChecks: each rule against what Calico and Kubernetes accept and refuse
// (issue #15, item 10). want "" means accepted.
func TestChecks(t *testing.T) {
	tests := []struct {
		name  string
		check value.Check
		v     any
		want  string
	}{
		{"pool name", PoolName, "new-pool", ""},
		{"pool name with dots", PoolName, "pool.v4.a", ""},
		{"pool name not DNS-1123", PoolName, "Bad_Name!", `"Bad_Name!" is not a valid Calico IP pool name: name must consist of lower case alphanumeric characters`},
		{"pool name empty", PoolName, "", `"" is not a valid Calico IP pool name`},
		{"pool name too long", PoolName, strings.Repeat("a", 254), "name is too long by 1 bytes"},
		{"optional pool name empty", Optional(PoolName), "", ""},
		{"optional pool name bad", Optional(PoolName), "A", `"A" is not a valid Calico IP pool name`},
		{"namespace", NamespaceName, "ippool-test", ""},
		{"namespace with a dot", NamespaceName, "a.b", `"a.b" is not a valid namespace name`},
		{"block size v4", BlockSize, 26, ""},
		{"block size v4 low", BlockSize, 20, ""},
		{"block size v6 high", BlockSize, 128, ""},
		{"block size unset", BlockSize, 0, ""},
		{"block size 99", BlockSize, 99, "blockSize 99 is not a Calico block size: IPv4 pools take 20 to 32, IPv6 pools 116 to 128"},
		{"block size 19", BlockSize, 19, "blockSize 19 is not a Calico block size"},
		{"block size negative", BlockSize, -1, "blockSize -1 is not a Calico block size"},
		{"allowed uses", AllowedUses, []any{"Workload", "Tunnel"}, ""},
		{"allowed uses empty", AllowedUses, []any{}, ""},
		{"allowed use unknown", AllowedUses, []any{"Workload", "Nope"}, `allowedUses[1] "Nope" is not a use Calico knows (Workload, Tunnel)`},
		{"allowed use LoadBalancer", AllowedUses, []any{"LoadBalancer"}, `allowedUses[0] "LoadBalancer" is not a use Calico knows`},
		{"allowed use not a string", AllowedUses, []any{3}, `allowedUses[0] is int 3, not a string`},
		{"calico selector", CalicoSelector, "all()", ""},
		{"calico selector expression", CalicoSelector, "has(zone) && zone in {'a', 'b'}", ""},
		{"calico selector empty", CalicoSelector, "", ""},
		{"calico selector unbalanced", CalicoSelector, "(((", `"(((" is not a valid Calico selector`},
		{"label selector", LabelSelector, "app=web,tier!=db", ""},
		{"label selector set", LabelSelector, "env in (prod, staging)", ""},
		{"label selector empty", LabelSelector, "", ""},
		{"label selector garbage", LabelSelector, "!!!===", `"!!!===" is not a valid label selector: unable to parse requirement`},
		{"at least 1", AtLeast(1), 1, ""},
		{"at least 1, got 0", AtLeast(1), 0, "must be at least 1, got 0"},
		{"at least 1, got -5", AtLeast(1), -5, "must be at least 1, got -5"},
		{"wrong type is an error, not a panic", PoolName, 3, "expected a string, got int 3"},
		{"wrong type for an int rule", AtLeast(1), "1", `expected an int, got string "1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.v)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("want accepted, got %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
}
