package actions

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runbookdev/runbook/internal/calico"
)

func TestOrdinalOf(t *testing.T) {
	for _, c := range []struct {
		cidr, ip string
		want     int
		ok       bool
	}{
		{"10.0.0.64/26", "10.0.0.64", 0, true},
		{"10.0.0.64/26", "10.0.0.127", 63, true},
		{"10.0.16.0/20", "10.0.31.255", 4095, true},
		{"10.0.0.64/26", "10.0.0.128", 0, false},
		{"fd00:10::40/122", "fd00:10::7f", 63, true},
		{"fd00:10::/116", "fd00:10::fff", 4095, true},
	} {
		got, ok := ordinalOf(netip.MustParsePrefix(c.cidr), netip.MustParseAddr(c.ip))
		if got != c.want || ok != c.ok {
			t.Errorf("%s in %s: got %d %v, want %d %v", c.ip, c.cidr, got, ok, c.want, c.ok)
		}
	}
}

func ref[T any](v T) *T { return &v }

// TestReleaseOrdinal: the block edit libcalico-go's release makes, and the
// guards against releasing an address that changed hands since it was observed.
func TestReleaseOrdinal(t *testing.T) {
	cidr := netip.MustParsePrefix("10.0.0.0/30")
	attrs := []libapiv3.AllocationAttribute{
		{AttrPrimary: ref("k8s-pod-network.aaa"), AttrSecondary: map[string]string{"namespace": "shop", "pod": "gone"}},
		{AttrPrimary: ref("k8s-pod-network.bbb"), AttrSecondary: map[string]string{"namespace": "shop", "pod": "alive"}},
		{AttrPrimary: ref("ipip-tunnel-addr-w1"), AttrSecondary: map[string]string{"node": "w1", "type": "ipipTunnelAddress"}},
	}
	spec := libapiv3.IPAMBlockSpec{CIDR: cidr.String(), Allocations: []*int{ref(2), ref(0), ref(1), nil}, Unallocated: []int{3}, Attributes: attrs,
		SequenceNumber: 7, SequenceNumberForAllocation: map[string]uint64{"0": 1, "1": 3, "2": 5}}
	leak := calico.Allocation{IP: netip.MustParseAddr("10.0.0.1"), Kind: calico.OwnerPod, Namespace: "shop", Pod: "gone", Handle: "k8s-pod-network.aaa"}
	got, handle, err := releaseOrdinal(spec, cidr, leak)
	if err != nil || handle != "k8s-pod-network.aaa" {
		t.Fatalf("%v %q", err, handle)
	}
	want := map[string]any{
		"allocations":                 []any{1, nil, 0, nil}, // attribute 0 removed, the others renumbered
		"unallocated":                 []int{3, 1},
		"attributes":                  attrs[1:],
		"sequenceNumber":              uint64(8),
		"sequenceNumberForAllocation": map[string]any{"1": nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("patch\n got %#v\nwant %#v", got, want)
	}
	if !reflect.DeepEqual(spec.Allocations, []*int{ref(2), ref(0), ref(1), nil}) {
		t.Fatal("the observed spec was modified")
	}
	for name, l := range map[string]calico.Allocation{
		"other handle": {IP: leak.IP, Namespace: "shop", Pod: "gone", Handle: "k8s-pod-network.zzz"},
		"other pod":    {IP: leak.IP, Namespace: "shop", Pod: "alive", Handle: "k8s-pod-network.aaa"},
		"free":         {IP: netip.MustParseAddr("10.0.0.3"), Namespace: "shop", Pod: "gone", Handle: "k8s-pod-network.aaa"},
	} {
		if _, _, err := releaseOrdinal(spec, cidr, l); !errors.Is(err, errNotLeaked) {
			t.Errorf("%s: want errNotLeaked, got %v", name, err)
		}
	}
}

// fakeCalico serves only Live(): what releaseLeakedAddresses reads.
type fakeCalico struct {
	calico.Client
	live *staticReader
}

func (f *fakeCalico) Live() calico.Reader { return f.live }

type staticReader struct {
	pools  []calico.Pool
	blocks []calico.Block
	pods   []calico.Pod
	nodes  []calico.Node
}

func (r *staticReader) Pools(context.Context) ([]calico.Pool, error)              { return r.pools, nil }
func (r *staticReader) Blocks(context.Context) ([]calico.Block, error)            { return r.blocks, nil }
func (r *staticReader) Affinities(context.Context) ([]calico.Affinity, error)     { return nil, nil }
func (r *staticReader) Pods(context.Context) ([]calico.Pod, error)                { return r.pods, nil }
func (r *staticReader) Nodes(context.Context) ([]calico.Node, error)              { return r.nodes, nil }
func (r *staticReader) ClusterCIDRs(context.Context) ([]calico.CIDRSource, error) { return nil, nil }

type memRecorder struct{ intents map[string]string }

func (m *memRecorder) Intent(_ context.Context, k, v string) error {
	m.intents[k] = v
	return nil
}
func (m *memRecorder) Created(context.Context, ObjectRef) error { return nil }

// TestReleaseLeakedApply drives Apply on fake clients: a leaked address is
// released from its block and its handle deleted; an address whose pod turns out
// to exist when re-checked is left alone; a resumed run keeps its first sighting.
func TestReleaseLeakedApply(t *testing.T) {
	const handle = "k8s-pod-network.abc"
	block := func() *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "crd.projectcalico.org/v1", "kind": "IPAMBlock",
			"metadata": map[string]any{"name": "10-0-0-0-30", "resourceVersion": "5"},
			"spec": map[string]any{"cidr": "10.0.0.0/30", "affinity": "host:w1",
				"allocations": []any{int64(0), nil, nil, nil}, "unallocated": []any{int64(1), int64(2), int64(3)},
				"attributes":     []any{map[string]any{"handle_id": handle, "secondary": map[string]any{"namespace": "shop", "pod": "ghost", "node": "w1"}}},
				"sequenceNumber": int64(3)}}}
	}
	hdl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "IPAMHandle",
		"metadata": map[string]any{"name": handle, "resourceVersion": "6"},
		"spec":     map[string]any{"handleID": handle, "block": map[string]any{"10.0.0.0/30": int64(1)}}}}
	leak := calico.Allocation{IP: netip.MustParseAddr("10.0.0.0"), Kind: calico.OwnerPod, Namespace: "shop", Pod: "ghost", Node: "w1", Handle: handle}
	reader := &staticReader{
		pools:  []calico.Pool{{Name: "old", CIDR: netip.MustParsePrefix("10.0.0.0/24")}},
		blocks: []calico.Block{{Name: "10-0-0-0-30", CIDR: netip.MustParsePrefix("10.0.0.0/30"), Affinity: "host:w1", Allocations: []calico.Allocation{leak}}},
		nodes:  []calico.Node{{Name: "w1"}},
	}
	cases := []struct {
		name        string
		podExists   bool
		prior       map[string]string
		wantRelease int
	}{
		{name: "pod gone: released", wantRelease: 1},
		{name: "pod re-appeared by the re-check: kept", podExists: true, wantRelease: 0},
		{name: "resumed after the grace period", prior: map[string]string{leakKey(leak): "2000-01-01T00:00:00Z"}, wantRelease: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var kubeObjs []runtime.Object
			if c.podExists {
				// Only the live GET sees it (created between the list and the re-check).
				kubeObjs = append(kubeObjs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ghost"}})
			}
			kube := fake.NewClientset(kubeObjs...)
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{gvrIPAMBlocks: "IPAMBlockList", gvrIPAMHandles: "IPAMHandleList"}, block(), hdl.DeepCopy())
			a := &releaseLeakedImpl{env: &poolEnv{cal: &fakeCalico{live: reader}, kube: kube}, dyn: dyn}
			rec := &memRecorder{intents: map[string]string{}}
			grace := time.Hour
			if c.prior == nil {
				grace = time.Millisecond
			}
			out, err := a.Apply(context.Background(), &Call{StepID: "s", With: map[string]any{"pool": "old", "gracePeriod": grace, "timeout": time.Minute},
				Prior: Record{Intent: c.prior}, Recorder: rec})
			if err != nil {
				t.Fatal(err)
			}
			if out.Outputs["released"] != c.wantRelease || out.Changed != (c.wantRelease > 0) {
				t.Fatalf("outcome %+v", out)
			}
			if c.prior == nil && readSightings(rec.intents)[digestOf(leak)].IsZero() {
				t.Error("the first sighting was not recorded before releasing")
			}
			b, err := dyn.Resource(gvrIPAMBlocks).Get(context.Background(), "10-0-0-0-30", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			allocs, _, _ := unstructured.NestedSlice(b.Object, "spec", "allocations")
			_, herr := dyn.Resource(gvrIPAMHandles).Get(context.Background(), handle, metav1.GetOptions{})
			if c.wantRelease == 1 {
				if allocs[0] != nil || !apierrors.IsNotFound(herr) {
					t.Fatalf("not released: allocations %v, handle %v", allocs, herr)
				}
			} else if allocs[0] == nil || herr != nil {
				t.Fatalf("an address whose pod exists was released: allocations %v, handle %v", allocs, herr)
			}
		})
	}
}

// countingRecorder counts journal writes.
type countingRecorder struct {
	memRecorder
	writes int
}

func (c *countingRecorder) Intent(ctx context.Context, k, v string) error {
	c.writes++
	return c.memRecorder.Intent(ctx, k, v)
}

// Issue #15 item 12: sightings cost one journal write per observation round,
// not one per leak, and stay well inside the journal's bound at 2,000 leaks.
func TestReleaseLeakedJournalsOncePerRound(t *testing.T) {
	const n = 2000
	block := calico.Block{Name: "10-0-0-0-21", CIDR: netip.MustParsePrefix("10.0.0.0/21"), Affinity: "host:w1"}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		block.Allocations = append(block.Allocations, calico.Allocation{IP: ip, Kind: calico.OwnerPod, Namespace: "shop",
			Pod: "ghost-" + strconv.Itoa(i), Node: "w1", Handle: "k8s-pod-network." + strings.Repeat("f", 56) + strconv.Itoa(i)})
	}
	reader := &staticReader{pools: []calico.Pool{{Name: "old", CIDR: netip.MustParsePrefix("10.0.0.0/16")}},
		blocks: []calico.Block{block}, nodes: []calico.Node{{Name: "w1"}}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvrIPAMBlocks: "IPAMBlockList", gvrIPAMHandles: "IPAMHandleList"})
	a := &releaseLeakedImpl{env: &poolEnv{cal: &fakeCalico{live: reader}, kube: fake.NewClientset()}, dyn: dyn}
	rec := &countingRecorder{memRecorder: memRecorder{intents: map[string]string{}}}
	// The grace period outlasts the step: it observes a few rounds, releases nothing.
	_, err := a.Apply(context.Background(), &Call{StepID: "s", With: map[string]any{"pool": "old", "gracePeriod": time.Hour, "timeout": 300 * time.Millisecond},
		Recorder: rec})
	if err == nil || !strings.Contains(err.Error(), "not yet past the grace period") {
		t.Fatalf("Apply = %v, want the timeout naming the grace period", err)
	}
	if rec.writes != 1 {
		t.Errorf("%d journal writes for %d leaks seen in unchanged rounds, want 1", rec.writes, n)
	}
	seen := readSightings(rec.intents)
	if len(seen) != n {
		t.Errorf("%d sightings journalled, want %d", len(seen), n)
	}
	if size := len(rec.intents[leaksSeenKey]); size > 48<<10 {
		t.Errorf("sightings of %d leaks take %d bytes of journal", n, size)
	}
	// Resumed: the journalled sightings are kept, not renewed.
	rec2 := &countingRecorder{memRecorder: memRecorder{intents: map[string]string{}}}
	_, _ = a.Apply(context.Background(), &Call{StepID: "s", With: map[string]any{"pool": "old", "gracePeriod": time.Hour, "timeout": 200 * time.Millisecond},
		Prior: Record{Intent: rec.intents}, Recorder: rec2})
	if rec2.writes != 0 {
		t.Errorf("a resumed step rewrote unchanged sightings %d times", rec2.writes)
	}
}
