package preflight

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
)

// fakeReader is Calico's state as plain data.
type fakeReader struct {
	pools  []calico.Pool
	blocks []calico.Block
	affs   []calico.Affinity
	pods   []calico.Pod
	nodes  []calico.Node
	cidrs  []calico.CIDRSource
}

func (r *fakeReader) Pools(context.Context) ([]calico.Pool, error)   { return r.pools, nil }
func (r *fakeReader) Blocks(context.Context) ([]calico.Block, error) { return r.blocks, nil }
func (r *fakeReader) Pods(context.Context) ([]calico.Pod, error)     { return r.pods, nil }
func (r *fakeReader) Nodes(context.Context) ([]calico.Node, error)   { return r.nodes, nil }
func (r *fakeReader) Affinities(context.Context) ([]calico.Affinity, error) {
	return r.affs, nil
}
func (r *fakeReader) ClusterCIDRs(context.Context) ([]calico.CIDRSource, error) {
	return r.cidrs, nil
}

func pool(name, cidr string, mod func(*v3.IPPoolSpec)) calico.Pool {
	spec := v3.IPPoolSpec{CIDR: cidr, IPIPMode: v3.IPIPModeAlways}
	if mod != nil {
		mod(&spec)
	}
	return calico.Pool{Name: name, CIDR: netip.MustParsePrefix(cidr), Spec: calico.WithDefaults(spec)}
}

const cniConfig = `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "%s"%s
      },
      "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}
  ]
}`

// world is a cluster for one case: a manifest install with pool "old"
// (192.168.0.0/16, IPIP) and three pods on two nodes, migrating to "new".
type world struct {
	reader   *fakeReader
	kubeObjs []runtime.Object
	crdObjs  []runtime.Object
	groups   []string
	ipamType string
	cniExtra string
	backend  string
	steps    []Step
}

func newWorld() *world {
	w := &world{ipamType: "calico-ipam", backend: "bird"}
	w.reader = &fakeReader{
		pools: []calico.Pool{pool("old", "192.168.0.0/16", nil)},
		nodes: []calico.Node{
			{Name: "w1", Labels: map[string]string{"zone": "a"}, Tunnels: map[calico.TunnelKind]netip.Addr{calico.TunnelIPIP: netip.MustParseAddr("192.168.0.1")}},
			{Name: "w2", Labels: map[string]string{"zone": "b"}, Tunnels: map[calico.TunnelKind]netip.Addr{calico.TunnelIPIP: netip.MustParseAddr("192.168.1.1")}},
		},
		pods: []calico.Pod{
			{Namespace: "shop", Name: "web-1", Node: "w1", Phase: corev1.PodRunning, IPs: []netip.Addr{netip.MustParseAddr("192.168.0.5")}},
			{Namespace: "shop", Name: "web-2", Node: "w2", Phase: corev1.PodRunning, IPs: []netip.Addr{netip.MustParseAddr("192.168.1.5")}},
			{Namespace: "shop", Name: "web-3", Node: "w2", Phase: corev1.PodRunning, IPs: []netip.Addr{netip.MustParseAddr("192.168.1.6")}},
		},
		cidrs: []calico.CIDRSource{{Source: "kubeadm-config networking.podSubnet", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}},
	}
	for _, p := range w.reader.pods {
		w.kubeObjs = append(w.kubeObjs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}, Spec: corev1.PodSpec{NodeName: p.Node},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.IPs[0].String()}})
	}
	w.kubeObjs = append(w.kubeObjs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	w.steps = migrationSteps(map[string]any{"name": "new", "cidr": "10.0.1.0/24", "ipipMode": "Always", "vxlanMode": "Never", "blockSize": 26})
	return w
}

// roles declares pool parameters as an action would: param, role, param, role...
func roles(pairs ...any) []decl.PoolParam {
	var out []decl.PoolParam
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, decl.PoolParam{Param: pairs[i].(string), Role: pairs[i+1].(decl.PoolRole)})
	}
	return out
}

func migrationSteps(ensure map[string]any) []Step {
	return []Step{
		{ID: "add", Pools: roles("name", decl.PoolCreates), With: ensure},
		{ID: "disable", Pools: roles("name", decl.PoolDisables), With: map[string]any{"name": "old"}},
		{ID: "move", Pools: roles("pool", decl.PoolMovesPodsFrom, "targetPool", decl.PoolMovesPodsTo), With: map[string]any{"pool": "old", "targetPool": "new"}},
		{ID: "delete", Pools: roles("name", decl.PoolDeletes), With: map[string]any{"name": "old"}},
	}
}

var listKinds = map[schema.GroupVersionResource]string{}

func init() {
	for _, k := range referenceKinds {
		listKinds[k.gvr] = "List"
	}
	listKinds[installationGVR] = "InstallationList"
	listKinds[bgpPeersGVR] = "BGPPeerList"
	listKinds[crdGVR("ipamhandles")] = "IPAMHandleList"
}

func (w *world) run(t *testing.T) []Finding {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "calico-config"},
		Data: map[string]string{cniConfigKey: fmt.Sprintf(cniConfig, w.ipamType, w.cniExtra), calicoBackendKey: w.backend}}
	kube := fake.NewClientset(append(w.kubeObjs, cm)...)
	disco := kube.Discovery().(*fakediscovery.FakeDiscovery)
	for _, g := range w.groups {
		disco.Resources = append(disco.Resources, &metav1.APIResourceList{GroupVersion: g})
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, w.crdObjs...)
	return Run(context.Background(), Cluster{Kube: kube, Dynamic: dyn, Discovery: disco, Calico: w.reader}, w.steps)
}

func obj(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "spec": spec}}
	u.SetName(name)
	u.SetNamespace(ns)
	return u
}

// summary is "severity id" of every finding not of severity info, sorted.
func summary(fs []Finding) string {
	var out []string
	for _, f := range fs {
		if f.Severity != Info {
			out = append(out, string(f.Severity)+" "+f.ID)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func TestChecks(t *testing.T) {
	podAnn := func(w *world, name string, ann map[string]string) {
		for _, o := range w.kubeObjs {
			if p, ok := o.(*corev1.Pod); ok && p.Name == name {
				p.Annotations = ann
			}
		}
	}
	cases := []struct {
		name  string
		setup func(w *world)
		want  string // summary of the warn and block findings
		text  string // a finding must contain this
	}{
		{name: "clean migration", setup: func(*world) {}, want: ""},
		{name: "host-local IPAM", setup: func(w *world) { w.ipamType = "host-local" }, want: "block calico-ipam", text: `"host-local" IPAM`},
		{name: "operator install with HostLocal", setup: func(w *world) {
			w.crdObjs = append(w.crdObjs, obj("operator.tigera.io/v1", "Installation", "", "default", map[string]any{"cni": map[string]any{"type": "Calico", "ipam": map[string]any{"type": "HostLocal"}}}))
		}, want: "block calico-ipam", text: "HostLocal IPAM"},
		{name: "OpenShift", setup: func(w *world) { w.groups = []string{"config.openshift.io/v1"} }, want: "block openshift", text: "OpenShift"},
		{name: "new pool outside the cluster CIDR", setup: func(w *world) { w.steps[0].With["cidr"] = "172.16.0.0/24" }, want: "block cluster-cidr", text: "outside the cluster pod CIDR 10.0.0.0/16"},
		{name: "clusterCIDR parameter overrides discovery", setup: func(w *world) {
			w.steps[0].With["cidr"] = "172.16.0.0/24"
			w.steps[0].With["clusterCIDR"] = "172.16.0.0/16"
		}, want: ""},
		{name: "new pool too small", setup: func(w *world) {
			w.steps[0].With["cidr"], w.steps[0].With["blockSize"] = "10.0.1.0/30", 30
		}, want: "block capacity, warn capacity", text: "5 addresses to move (3 pods, 2 tunnel addresses)"},
		{name: "fewer blocks than nodes", setup: func(w *world) {
			w.steps[0].With["cidr"], w.steps[0].With["blockSize"] = "10.0.1.0/26", 26
		}, want: "warn capacity", text: "2 nodes select the pool but it has only 1 blocks"},
		{name: "nodeSelector misses a node", setup: func(w *world) { w.steps[0].With["nodeSelector"] = "zone == 'a'" }, want: "block coverage, block tunnel",
			text: "w2 (2 pods)"},
		{name: "new pool without encapsulation", setup: func(w *world) { w.steps[0].With["ipipMode"] = "Never" }, want: "block tunnel, warn pool-behaviour", text: "node w1 loses its ipip tunnel address"},
		{name: "namespace pinned to the old pool", setup: func(w *world) {
			w.kubeObjs[len(w.kubeObjs)-1].(*corev1.Namespace).Annotations = map[string]string{annotationIPv4Pools: `["old"]`}
		}, want: "block pins.namespace", text: "Namespace shop metadata.annotations[cni.projectcalico.org/ipv4pools]"},
		{name: "pod pinned to old and new, pod with a fixed address", setup: func(w *world) {
			podAnn(w, "web-1", map[string]string{annotationIPv4Pools: `["192.168.0.0/16", "new"]`})
			podAnn(w, "web-2", map[string]string{annotationIPAddrs: `["192.168.1.5"]`})
		}, want: "block pins.ipAddrs, warn pins.pod", text: "shop/web-2 (192.168.1.5)"},
		{name: "CNI config ipv4_pools", setup: func(w *world) { w.cniExtra = `, "ipv4_pools": ["old"]` }, want: "block pins.cni", text: "ipam.ipv4_pools"},
		{name: "policies naming the old CIDR", setup: func(w *world) {
			w.crdObjs = append(w.crdObjs,
				obj("networking.k8s.io/v1", "NetworkPolicy", "shop", "allow-old", map[string]any{"ingress": []any{map[string]any{"from": []any{map[string]any{"ipBlock": map[string]any{"cidr": "192.168.1.0/24", "except": []any{"192.168.1.5/32"}}}}}}}),
				obj("networking.k8s.io/v1", "NetworkPolicy", "shop", "allow-all", map[string]any{"ingress": []any{map[string]any{"from": []any{map[string]any{"ipBlock": map[string]any{"cidr": "0.0.0.0/0"}}}}}}),
				obj("crd.projectcalico.org/v1", "GlobalNetworkPolicy", "", "gnp", map[string]any{"egress": []any{map[string]any{"destination": map[string]any{"notNets": []any{"192.168.0.0/16"}}}}}),
				obj("crd.projectcalico.org/v1", "GlobalNetworkSet", "", "set", map[string]any{"nets": []any{"192.168.0.7"}}),
				obj("crd.projectcalico.org/v1", "BGPFilter", "", "f", map[string]any{"exportV4": []any{map[string]any{"action": "Accept", "matchOperator": "In", "cidr": "192.168.0.0/16"}}}),
				obj("crd.projectcalico.org/v1", "IPReservation", "", "r", map[string]any{"reservedCIDRs": []any{"192.168.2.0/24", "10.0.9.0/24"}}),
			)
		}, want: "warn references, warn references, warn references, warn references, warn references, warn references",
			text: "NetworkPolicy shop/allow-old spec.ingress[0].from[0].ipBlock.except[0]"},
		{name: "new pool not exported over BGP", setup: func(w *world) { w.steps[0].With["disableBGPExport"] = true }, want: "warn bgp-export", text: "calico_backend is bird"},
		{name: "not exported but no BGP", setup: func(w *world) {
			w.steps[0].With["disableBGPExport"] = true
			w.backend = "vxlan"
		}, want: ""},
		{name: "dual-stack with only an IPv4 new pool", setup: func(w *world) {
			w.reader.pools = append(w.reader.pools, pool("old6", "fd00:192:168::/48", func(s *v3.IPPoolSpec) { s.IPIPMode = v3.IPIPModeNever }))
			w.reader.pods[0].IPs = append(w.reader.pods[0].IPs, netip.MustParseAddr("fd00:192:168::5"))
			w.steps = append(w.steps, Step{ID: "disable6", Pools: roles("name", decl.PoolDisables), With: map[string]any{"name": "old6"}})
		}, want: "block coverage", text: "no enabled new IPv6 pool"},
		{name: "leaked address in the old pool", setup: func(w *world) {
			w.reader.blocks = []calico.Block{{Name: "192-168-0-0-26", CIDR: netip.MustParsePrefix("192.168.0.0/26"), Affinity: "host:w1", Allocations: []calico.Allocation{
				{IP: netip.MustParseAddr("192.168.0.5"), Kind: calico.OwnerPod, Namespace: "shop", Pod: "web-1", Node: "w1"},
				{IP: netip.MustParseAddr("192.168.0.9"), Kind: calico.OwnerPod, Namespace: "shop", Pod: "gone", Node: "w1"},
				// The pod is gone, but another pod holds the address now: never a leak.
				{IP: netip.MustParseAddr("192.168.1.6"), Kind: calico.OwnerPod, Namespace: "shop", Pod: "renamed", Node: "w2"},
			}}}
		}, want: "warn ipam-health.leaked", text: "192.168.0.9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			c.setup(w)
			fs := w.run(t)
			if got := summary(fs); got != c.want {
				t.Fatalf("findings %q, want %q:\n%s", got, c.want, dump(fs))
			}
			if c.text != "" && !slices.ContainsFunc(fs, func(f Finding) bool { return strings.Contains(f.String(), c.text) }) {
				t.Fatalf("no finding mentions %q:\n%s", c.text, dump(fs))
			}
			for _, f := range fs {
				if f.Severity != Info && f.Fix == "" {
					t.Errorf("finding without a fix: %s", f)
				}
			}
		})
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s\n", f.Severity, f)
	}
	return b.String()
}

// TestResumeRunsOnlyRelevantChecks: with only deletePool left, the checks about
// creating and filling the new pool do not run.
func TestResumeRunsOnlyRelevantChecks(t *testing.T) {
	w := newWorld()
	w.steps[0].With["nodeSelector"] = "zone == 'a'" // would be a coverage finding
	w.steps = w.steps[3:]
	if got := summary(w.run(t)); got != "" {
		t.Fatalf("findings %q for a run with only deletePool left", got)
	}
}

// TestCheckErrorIsAFinding: a check that cannot read is reported, not passed.
func TestCheckErrorIsAFinding(t *testing.T) {
	fs := RunChecks(context.Background(), Cluster{}, []Step{{ID: "a", Pools: roles("name", decl.PoolDisables), With: map[string]any{"name": "old"}}},
		[]Check{{ID: "x", Run: func(context.Context, *Input) ([]Finding, error) { return nil, fmt.Errorf("forbidden") }}})
	if len(fs) != 1 || fs[0].Severity != Warn || !strings.Contains(fs[0].Message, "could not run: forbidden") {
		t.Fatalf("%+v", fs)
	}
}

func TestParseCNIConfig(t *testing.T) {
	for _, c := range []struct {
		raw, typ string
		pools    []string
		ok       bool
	}{
		{fmt.Sprintf(cniConfig, "calico-ipam", `, "ipv4_pools": ["a", "10.0.0.0/24"]`), "calico-ipam", []string{"a", "10.0.0.0/24"}, true},
		{`{"type": "calico", "ipam": {"type": "host-local"}}`, "host-local", nil, true},
		{`{"plugins": [{"type": "flannel"}]}`, "", nil, false},
	} {
		got, ok, err := parseCNIConfig(c.raw)
		if err != nil || ok != c.ok || got.Type != c.typ || !slices.Equal(got.IPv4Pools, c.pools) {
			t.Errorf("%s: got %+v %v %v", c.raw, got, ok, err)
		}
	}
	if _, _, err := parseCNIConfig(`{"plugins": [`); err == nil {
		t.Error("broken JSON must be an error")
	}
}

// TestUnknownParametersAreNotMissingPools: a new pool whose parameters are known
// only after apply is not reported as missing.
func TestUnknownParametersAreNotMissingPools(t *testing.T) {
	w := newWorld()
	w.steps[0].With = nil
	if got := summary(w.run(t)); got != "" {
		t.Fatalf("findings %q", got)
	}
}
