package scenarios

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimal = `
apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: minimal
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16}
nodes:
- {name: cp, controlPlane: true}
`

func TestShippedScenariosParse(t *testing.T) {
	names := Names()
	if !slices.Contains(names, Default) {
		t.Fatalf("shipped scenarios %v lack %q", names, Default)
	}
	for _, name := range names {
		if _, err := Load(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The default scenario is the Calico doc's cluster; the e2e tests and the demo
// depend on these facts.
func TestDefaultScenarioIsTheCalicoDocCluster(t *testing.T) {
	s, err := Load(Default)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.PodSubnet != "10.0.0.0/16" {
		t.Errorf("podSubnet = %s, want the doc's kubeadm --pod-network-cidr 10.0.0.0/16", s.Cluster.PodSubnet)
	}
	if len(s.Calico.IPPools) != 1 {
		t.Fatalf("pools = %+v, want default-ipv4-ippool only", s.Calico.IPPools)
	}
	want := IPPool{Name: "default-ipv4-ippool", CIDR: "192.168.0.0/16", IPIPMode: "Always", VXLANMode: "Never", NATOutgoing: true, BlockSize: 26, NodeSelector: "all()"}
	if got := s.Calico.IPPools[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("pool = %+v, want %+v", got, want)
	}
	if n := len(s.Nodes()); n != 3 {
		t.Errorf("%d nodes, want 3", n)
	}
	var coredns, pdbs int
	for _, w := range s.Workloads {
		if w.Namespace == "kube-system" && w.Name == "coredns" {
			coredns++
		}
		if w.PDB != nil {
			pdbs++
		}
	}
	if coredns != 1 || pdbs < 2 {
		t.Errorf("want coredns in kube-system and app PDBs; got coredns=%d pdbs=%d", coredns, pdbs)
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Parse([]byte(minimal + `
pods: {startDelay: 1500ms}
workloads:
- {namespace: shop, name: web, replicas: 2}
- {namespace: shop, name: v6, replicas: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.ServiceSubnet != DefaultServiceSubnet {
		t.Errorf("serviceSubnet = %q", s.Cluster.ServiceSubnet)
	}
	p := s.Calico.IPPools[0]
	if p.BlockSize != 26 || p.NodeSelector != "all()" || p.IPIPMode != "Never" || p.VXLANMode != "Never" {
		t.Errorf("pool defaults = %+v", p)
	}
	w := s.Workloads[0]
	if w.Kind != "Deployment" || w.Image != DefaultImage || w.Labels["app"] != "web" {
		t.Errorf("workload defaults = %+v", w)
	}
	if s.Pods.StartDelay.Duration != 1500*time.Millisecond {
		t.Errorf("startDelay = %v", s.Pods.StartDelay.Duration)
	}
	if s.PodCount() != 3 {
		t.Errorf("PodCount = %d", s.PodCount())
	}
}

func TestNodesExpand(t *testing.T) {
	s := &Scenario{NodeGroups: []NodeGroup{
		{Name: "cp", ControlPlane: true, Count: 1},
		{Name: "worker", Count: 3, Labels: map[string]string{"zone": "a"}},
	}}
	var got []string
	for _, n := range s.Nodes() {
		got = append(got, n.Name)
		if n.Name != "cp" && (n.ControlPlane || n.Labels["zone"] != "a") {
			t.Errorf("node %+v lost its group's settings", n)
		}
	}
	if strings.Join(got, ",") != "cp,worker-1,worker-2,worker-3" {
		t.Errorf("nodes = %v", got)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field", minimal + "colour: blue\n", `unknown field "colour"`},
		{"wrong kind", strings.Replace(minimal, "kind: Scenario", "kind: Runbook", 1), "apiVersion/kind"},
		{"bad pod subnet", strings.Replace(minimal, "10.0.0.0/16", "10.0.0.0/33", 1), "cluster.podSubnet"},
		{"non-canonical pool", strings.Replace(minimal, "192.168.0.0/16", "192.168.1.0/16", 1), "not canonical"},
		{"no control plane", strings.Replace(minimal, "controlPlane: true", "controlPlane: false", 1), "controlPlane: true"},
		{"no pools", strings.Replace(minimal, "  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16}\n", "", 1), "ipPools"},
		{"both encapsulations", strings.Replace(minimal, "cidr: 192.168.0.0/16}", "cidr: 192.168.0.0/16, ipipMode: Always, vxlanMode: Always}", 1), "cannot both"},
		{"bad mode", strings.Replace(minimal, "cidr: 192.168.0.0/16}", "cidr: 192.168.0.0/16, ipipMode: always}", 1), `"always" is not`},
		{"duplicate node", minimal + "- {name: cp}\n", `duplicate node "cp"`},
		{"unsupported kind", minimal + "workloads:\n- {kind: ReplicaSet, namespace: a, name: b, replicas: 1}\n", `"ReplicaSet" is not one of`},
		{"pdb needs one bound", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, pdb: {}}\n", "exactly one"},
		{"pdb policy", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, pdb: {maxUnavailable: 1, unhealthyPodEvictionPolicy: Never}}\n", "unhealthyPodEvictionPolicy"},
		{"duplicate workload", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1}\n- {namespace: a, name: b, replicas: 1}\n", "duplicate workload a/b"},
		{"negative delay", minimal + "pods: {startDelay: -1s}\n", "pods.startDelay"},
		{"two IPv4 pod subnets", strings.Replace(minimal, "podSubnet: 10.0.0.0/16", "podSubnet: '10.0.0.0/16,10.1.0.0/16'", 1), "one IPv4 and one IPv6"},
		{"three pod subnets", strings.Replace(minimal, "podSubnet: 10.0.0.0/16", "podSubnet: '10.0.0.0/16,fd00::/56,fd01::/56'", 1), "at most two"},
		{"bad allowed use", strings.Replace(minimal, "cidr: 192.168.0.0/16}", "cidr: 192.168.0.0/16, allowedUses: [Pods]}", 1), `"Pods" is not Workload`},
		{"daemonset replicas", minimal + "workloads:\n- {kind: DaemonSet, namespace: a, name: b, replicas: 2}\n", "one pod per node"},
		{"runFor on a deployment", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, runFor: 1m}\n", "only for Jobs"},
		{"negative start delay", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, startDelay: -1s}\n", "workloads[0].startDelay"},
		{"negative shutdown delay", minimal + "pods: {shutdownDelay: -1s}\n", "pods.shutdownDelay"},
		{"negative workload shutdown delay", minimal + "workloads:\n- {namespace: a, name: b, shutdownDelay: -5s}\n", "workloads[0].shutdownDelay"},
		{"negative grace period", minimal + "workloads:\n- {namespace: a, name: b, terminationGracePeriodSeconds: -1}\n", "workloads[0].terminationGracePeriodSeconds"},
		{"fractional readiness delay", minimal + "workloads:\n- {namespace: a, name: b, readinessDelay: 1500ms}\n", "workloads[0].readinessDelay"},
		{"zero readiness delay", minimal + "workloads:\n- {namespace: a, name: b, readinessDelay: 0s}\n", "workloads[0].readinessDelay"},
		{"unknown fault", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, fault: Slow}\n", `"Slow" is not NeverReady`},
		{"unnamed extra pdb", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, pdbs: [{maxUnavailable: 1}]}\n", "pdbs[0].name"},
		{"named pdb", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, pdb: {name: x, maxUnavailable: 1}}\n", "use pdbs for named budgets"},
		{"pdb name clash", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, pdb: {maxUnavailable: 1}, pdbs: [{name: b, minAvailable: 1}]}\n", "duplicate PodDisruptionBudget a/b"},
		{"webhook policy", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, webhook: {failurePolicy: Never}}\n", "webhook.failurePolicy"},
		{"count with labels", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, count: 2, labels: {x: y}}\n", "copies need labels of their own"},
		{"pin twice", minimal + "workloads:\n- {namespace: a, name: b, replicas: 1, ipv4Pools: [p], annotations: {cni.projectcalico.org/ipv4pools: '[\"p\"]'}}\n", "set one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestBlockSizeLimits(t *testing.T) {
	for _, tc := range []struct {
		cidr  string
		block int
		ok    bool
	}{
		{"192.168.0.0/16", 26, true},
		{"192.168.0.0/16", 19, false},
		{"192.168.0.0/16", 33, false},
		{"192.168.0.0/24", 22, false}, // block larger than the pool
		{"fd00::/48", 122, true},
		{"fd00::/48", 112, false},
	} {
		s := &Scenario{APIVersion: APIVersion, Kind: Kind, Name: "x",
			Cluster:    Cluster{PodSubnet: "10.0.0.0/16", ServiceSubnet: DefaultServiceSubnet},
			Calico:     Calico{IPPools: []IPPool{{Name: "p", CIDR: tc.cidr, BlockSize: tc.block, IPIPMode: "Never", VXLANMode: "Never"}}},
			NodeGroups: []NodeGroup{{Name: "cp", Count: 1, ControlPlane: true}},
		}
		err := s.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s blockSize %d: err = %v, want ok=%v", tc.cidr, tc.block, err, tc.ok)
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(path); err != nil || s.Name != "minimal" {
		t.Errorf("Load(file) = %v, %v", s, err)
	}
	if _, err := Load("no-such-scenario"); err == nil || !strings.Contains(err.Error(), "shipped: ") {
		t.Errorf("Load(unknown) = %v, want the list of shipped scenarios", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Load(missing file) succeeded")
	}
}

// Every workload kind and knob parses, with the defaults the sandbox relies on.
func TestParseAllKinds(t *testing.T) {
	s, err := Parse([]byte(strings.Replace(minimal, "podSubnet: 10.0.0.0/16", "podSubnet: '10.0.0.0/16,fd00:10::/56'", 1) + `
- {name: worker, count: 2}
workloads:
- {kind: StatefulSet, namespace: db, name: pg, replicas: 3, pdbs: [{name: pg-a, maxUnavailable: 1}, {name: pg-b, minAvailable: 2, unhealthyPodEvictionPolicy: AlwaysAllow}]}
- {kind: DaemonSet, namespace: kube-system, name: agent, tolerateControlPlane: true}
- {kind: DaemonSet, namespace: kube-system, name: workers-only}
- {kind: Job, namespace: batch, name: report, runFor: 1h}
- {kind: Pod, namespace: default, name: bare}
- {namespace: hooks, name: policy, replicas: 2, webhook: {}, ipv4Pools: [default-ipv4-ippool], startDelay: 2s, fault: NeverReady}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cluster.PodSubnets(); len(got) != 2 || !got[1].Addr().Is6() {
		t.Errorf("PodSubnets = %v", got)
	}
	byName := map[string]Workload{}
	for _, w := range s.Workloads {
		byName[w.Name] = w
	}
	if byName["report"].Replicas != 1 || byName["bare"].Replicas != 1 {
		t.Errorf("Job and Pod replicas default to 1: %d, %d", byName["report"].Replicas, byName["bare"].Replicas)
	}
	if byName["policy"].Webhook.FailurePolicy != "Fail" {
		t.Errorf("webhook failurePolicy default = %q", byName["policy"].Webhook.FailurePolicy)
	}
	if pdbs := byName["pg"].AllPDBs(); len(pdbs) != 2 || pdbs[1].Name != "pg-b" {
		t.Errorf("AllPDBs = %+v", pdbs)
	}
	// 3 + (3 nodes) + (2 workers) + 1 + 1 + 2
	if n := s.PodCount(); n != 12 {
		t.Errorf("PodCount = %d, want 12", n)
	}
}

func TestWorkloadCopies(t *testing.T) {
	s, err := Parse([]byte(minimal + `
workloads:
- {namespace: a, name: app, replicas: 2, count: 3, pdb: {maxUnavailable: 25%}, pdbs: [{name: extra, minAvailable: 1}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	var names, pdbs, labels []string
	for _, w := range s.Workloads {
		names = append(names, w.Name)
		labels = append(labels, w.Labels["app"])
		for _, p := range w.AllPDBs() {
			pdbs = append(pdbs, p.Name)
		}
	}
	if strings.Join(names, ",") != "app-1,app-2,app-3" || strings.Join(labels, ",") != "app-1,app-2,app-3" {
		t.Errorf("copies %v, labels %v", names, labels)
	}
	if strings.Join(pdbs, ",") != "app-1,extra-1,app-2,extra-2,app-3,extra-3" {
		t.Errorf("budgets %v", pdbs)
	}
	if s.PodCount() != 6 {
		t.Errorf("PodCount = %d", s.PodCount())
	}
}
