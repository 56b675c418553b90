package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/runbooks"
	"github.com/runbookdev/runbook/test/sandbox"
)

// poolRig is a sandbox cluster with the actions bound to it, as the CLI binds them.
type poolRig struct {
	c      *sandbox.Cluster
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	calico clientv3.Interface // only to create fixtures calico-node would create
	bound  *actions.Bound
	dir    string
}

// nodeAnnotation reads one annotation of a node.
func nodeAnnotation(ctx context.Context, t *testing.T, r *poolRig, node, key string) string {
	t.Helper()
	n, err := r.kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Annotations[key]
}

func newPoolRig(ctx context.Context, t *testing.T, c *sandbox.Cluster) *poolRig {
	t.Helper()
	cfg := c.RESTConfig()
	r := &poolRig{c: c, kube: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg), dir: t.TempDir()}
	var err error
	if r.calico, err = c.NewCalicoClient(); err != nil {
		t.Fatal(err)
	}
	if r.bound, err = actions.Bind(ctx, &actions.Cluster{Config: cfg, Kube: r.kube, Dynamic: r.dyn}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.bound.Close)
	return r
}

// runOpts tweak one engine run.
type runOpts struct {
	journal    string // default: the runbook's name
	stopBefore string
}

// run executes (or resumes) a runbook through the engine with a file journal.
func (r *poolRig) run(ctx context.Context, t *testing.T, src string, o runOpts) (*engine.Report, error) {
	t.Helper()
	rb, err := runbooks.Parse("test.yaml", []byte(src), actions.Default)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	params, err := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	if o.journal == "" {
		o.journal = rb.Name
	}
	rep, err := engine.Run(ctx, engine.Options{Runbook: rb, Params: params, Impls: r.bound.Impls, Funcs: r.bound.Funcs,
		Changes: r.bound.Changes, Store: r.store(o.journal), Holder: "e2e", StopBefore: o.stopBefore,
		Events: func(e engine.Event) { t.Logf("event %s %s %s %s", e.Type, e.Step, e.Status, e.Message) }})
	if rep == nil {
		t.Fatalf("engine.Run: no report: %v", err)
	}
	return rep, err
}

func (r *poolRig) store(journal string) *engine.FileStore {
	return &engine.FileStore{Path: filepath.Join(r.dir, journal+".json")}
}

// journal loads a run journal, to read step outputs and records.
func (r *poolRig) journal(ctx context.Context, t *testing.T, name string) *engine.Journal {
	t.Helper()
	j, _, err := r.store(name).Load(ctx)
	if err != nil || j == nil {
		t.Fatalf("journal %s: %v %v", name, j, err)
	}
	return j
}

func step(t *testing.T, rep *engine.Report, id string) engine.StepReport {
	t.Helper()
	for _, s := range rep.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in report %+v", id, rep)
	return engine.StepReport{}
}

func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s does not mention %q:\n%s", what, p, s)
		}
	}
}

var (
	blockaffinities = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "blockaffinities"}
	ipamhandles     = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamhandles"}
)

// clusterState is what a refusal must leave unchanged: pools, IPAM blocks,
// affinities and handles (content, and with versions also resourceVersions, which
// move on any write), pods (identity and addresses) and namespaces.
func clusterState(ctx context.Context, t *testing.T, r *poolRig, withVersions bool) string {
	t.Helper()
	return r.state(ctx, t, stateOpts{versions: withVersions})
}

// stateOpts select what a state comparison covers.
type stateOpts struct {
	versions bool
	// withoutTunnels leaves out node tunnel addresses: calico-node moves them
	// whenever pools change (a rollback that disables and re-enables pools gives
	// nodes new tunnel addresses, legitimately). It also leaves out which
	// calico-node pod runs on each node: a rollback restarts calico-node where it
	// missed the change (actions/ensure_pool.go drainTunnels).
	withoutTunnels bool
}

func (r *poolRig) state(ctx context.Context, t *testing.T, o stateOpts) string {
	t.Helper()
	tunnelHandles := map[string]bool{}
	nodes, err := r.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		for _, k := range calico.TunnelKinds {
			tunnelHandles[tunnelHandle(k, n.Name)] = true
		}
	}
	var lines []string
	for _, gvr := range []schema.GroupVersionResource{ippools, ipamblocks, blockaffinities, ipamhandles} {
		l, err := r.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", gvr.Resource, err)
		}
		for _, obj := range l.Items {
			if o.withoutTunnels && gvr == ipamhandles && tunnelHandles[obj.GetName()] {
				continue
			}
			spec := any(obj.Object["spec"])
			if o.withoutTunnels && gvr == ipamblocks {
				spec = blockOwners(t, &obj)
			}
			body, _ := json.Marshal(spec)
			line := fmt.Sprintf("%s %s labels=%v annotations=%v spec=%s", gvr.Resource, obj.GetName(), obj.GetLabels(), obj.GetAnnotations(), body)
			if o.versions {
				line += " rv=" + obj.GetResourceVersion()
			}
			lines = append(lines, line)
		}
	}
	pods, err := r.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if o.withoutTunnels && p.Labels["k8s-app"] == "calico-node" {
			lines = append(lines, fmt.Sprintf("calico-node on %s ips=%v", p.Spec.NodeName, p.Status.PodIPs))
			continue
		}
		lines = append(lines, fmt.Sprintf("pod %s/%s uid=%s ips=%v", p.Namespace, p.Name, p.UID, p.Status.PodIPs))
	}
	nss, err := r.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		lines = append(lines, "namespace "+ns.Name)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// blockOwners renders a block as its affinity and its non-tunnel allocations.
func blockOwners(t *testing.T, obj *unstructured.Unstructured) string {
	t.Helper()
	var b struct {
		Spec struct {
			CIDR        string  `json:"cidr"`
			Affinity    *string `json:"affinity"`
			Allocations []*int  `json:"allocations"`
			Attributes  []struct {
				Secondary map[string]string `json:"secondary"`
			} `json:"attributes"`
		} `json:"spec"`
	}
	raw, _ := json.Marshal(obj.Object)
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("block %s: %v", obj.GetName(), err)
	}
	out := b.Spec.CIDR
	if b.Spec.Affinity != nil {
		out += " " + *b.Spec.Affinity
	}
	for ord, idx := range b.Spec.Allocations {
		if idx == nil || *idx >= len(b.Spec.Attributes) {
			continue
		}
		if sec := b.Spec.Attributes[*idx].Secondary; strings.HasSuffix(sec["type"], "TunnelAddress") {
			continue
		} else {
			out += fmt.Sprintf(" %d=%s/%s", ord, sec["namespace"], sec["pod"])
		}
	}
	return out
}

func requireUnchanged(t *testing.T, before, after string) {
	t.Helper()
	if before == after {
		return
	}
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	in := func(l []string, s string) bool {
		i := sort.SearchStrings(l, s)
		return i < len(l) && l[i] == s
	}
	for _, s := range b {
		if !in(a, s) {
			t.Errorf("changed or gone: %s", s)
		}
	}
	for _, s := range a {
		if !in(b, s) {
			t.Errorf("new or changed: %s", s)
		}
	}
}

// pool reads a pool with the dynamic client (nil when absent).
func (r *poolRig) pool(ctx context.Context, t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := r.dyn.Resource(ippools).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var ipipTunnelAnnotation = calico.TunnelAnnotation(calico.TunnelIPIP)

// tunnelHandle is the IPAM handle calico-node gives a node's tunnel address of kind
// k (node/pkg/allocateip generateHandleAndAttributes, v3.28.5).
func tunnelHandle(k calico.TunnelKind, node string) string {
	prefix := map[calico.TunnelKind]string{
		calico.TunnelIPIP: "ipip", calico.TunnelVXLAN: "vxlan", calico.TunnelVXLANV6: "vxlan-v6",
		calico.TunnelWireguard: "wireguard", calico.TunnelWireguardV6: "wireguard-v6",
	}[k]
	return prefix + "-tunnel-addr-" + node
}

// movePods does by hand what deletePodsInPool (issue #6) will do: delete every pod
// with an address in prefix and wait until the controllers' replacements run
// elsewhere.
func (r *poolRig) movePods(ctx context.Context, t *testing.T, prefix netip.Prefix) {
	t.Helper()
	for _, p := range podsIn(ctx, t, r.kube, prefix) {
		if err := r.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	waitFor(ctx, t, "no pod left in "+prefix.String()+" and every pod Ready", func(ctx context.Context) (bool, error) {
		pods, err := r.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Spec.HostNetwork {
				continue
			}
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil || prefix.Contains(ip) || !ready(&p) {
				return false, nil
			}
		}
		return true, nil
	})
}

// crashedRun writes the journal a process killed during step leaves: the run
// running, the step with the given status and the intents it had recorded. It
// returns the run id.
func (r *poolRig) crashedRun(ctx context.Context, t *testing.T, src, journal, stepID, status string, intent map[string]string) string {
	t.Helper()
	rb, err := runbooks.Parse("test.yaml", []byte(src), actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	params, err := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	runID := now.Format("20060102-150405") + "-c0ffee"
	rec := &engine.StepRecord{Status: status, StartedAt: &now, Attempts: 1, Record: actions.Record{Intent: intent}}
	if status == engine.StatusDone {
		rec.FinishedAt = &now
	}
	j := &engine.Journal{RunID: runID, Runbook: rb.Name, RunbookDigest: rb.Digest(), ParamsDigest: params.Digest(),
		Status: engine.StatusRunning, Holder: "killed", StartedAt: now, UpdatedAt: now, Steps: map[string]*engine.StepRecord{stepID: rec}}
	if _, err := r.store(journal).Save(ctx, j, ""); err != nil {
		t.Fatal(err)
	}
	return runID
}

func (r *poolRig) createNamespace(ctx context.Context, t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := r.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}
