package tunnelmove

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/runbookdev/runbook/internal/calico"
)

const ipipAnn = "projectcalico.org/IPv4IPIPTunnelAddr"

func calicoNodePod(name, node string, uid types.UID, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "calico-system", UID: uid, Labels: map[string]string{"k8s-app": "calico-node"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "calico-node", UID: "ds", Controller: &yes}}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

func node(name, ipip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}}
	if ipip != "" {
		n.Annotations[ipipAnn] = ipip
	}
	return n
}

// daemon plays the DaemonSet controller and calico-node: when the pod on
// node-1 is deleted it publishes the given tunnel address sequence (an empty
// string removes the annotation) and creates a replacement pod.
type daemon struct {
	addresses []string
	ready     bool
	deletes   atomic.Int32
}

func (d *daemon) install(t *testing.T, kube *fake.Clientset) {
	kube.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d.deletes.Add(1)
		go func() {
			ctx := context.Background()
			for _, ip := range d.addresses {
				time.Sleep(20 * time.Millisecond)
				n, err := kube.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
				if err != nil {
					t.Errorf("get node: %v", err)
					return
				}
				if ip == "" {
					delete(n.Annotations, ipipAnn)
				} else {
					n.Annotations[ipipAnn] = ip
				}
				if _, err := kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
					t.Errorf("update node: %v", err)
				}
			}
			if _, err := kube.CoreV1().Pods("calico-system").Create(ctx, calicoNodePod("calico-node-new", "node-1", "uid-new", d.ready), metav1.CreateOptions{}); err != nil {
				t.Errorf("create replacement: %v", err)
			}
		}()
		return false, nil, nil // the tracker deletes it
	})
}

func TestRestart(t *testing.T) {
	pool := netip.MustParsePrefix("192.168.0.0/16")
	target := Target{Node: "node-1", Pool: pool, Kinds: []calico.TunnelKind{calico.TunnelIPIP}}
	for _, tc := range []struct {
		name       string
		nodeIPIP   string
		daemon     *daemon
		resumed    bool // the pod was deleted by an earlier attempt
		remove     bool // no other pool serves the kind: it is to go
		timeout    time.Duration
		wantErr    string
		wantGap    bool
		wantDelete int32
		wantSkip   bool
		wantAfter  string
	}{
		{name: "replaced in one write", nodeIPIP: "192.168.0.1", daemon: &daemon{addresses: []string{"10.0.0.1"}, ready: true},
			timeout: 5 * time.Second, wantDelete: 1, wantAfter: "10.0.0.1"},
		{name: "removed, then assigned: the gap is measured", nodeIPIP: "192.168.0.1", daemon: &daemon{addresses: []string{"", "10.0.0.1"}, ready: true},
			timeout: 5 * time.Second, wantDelete: 1, wantGap: true, wantAfter: "10.0.0.1"},
		{name: "replacement never Ready", nodeIPIP: "192.168.0.1", daemon: &daemon{addresses: []string{"10.0.0.1"}, ready: false},
			timeout: 500 * time.Millisecond, wantDelete: 1, wantErr: "no new calico-node pod is Ready"},
		{name: "address stays in the pool", nodeIPIP: "192.168.0.1", daemon: &daemon{addresses: []string{"192.168.0.7"}, ready: true},
			timeout: 500 * time.Millisecond, wantDelete: 1, wantErr: "is still in 192.168.0.0/16"},
		{name: "already moved: nothing deleted", nodeIPIP: "10.0.0.9", daemon: &daemon{ready: true},
			timeout: time.Second, wantSkip: true},
		{name: "resumed after the delete: waits for the replacement only", nodeIPIP: "10.0.0.1", resumed: true, daemon: &daemon{},
			timeout: time.Second, wantAfter: "10.0.0.1"},
		{name: "no other pool serves it: removed", nodeIPIP: "192.168.0.1", remove: true, daemon: &daemon{addresses: []string{""}, ready: true},
			timeout: 5 * time.Second, wantDelete: 1, wantAfter: "invalid IP"},
		{name: "no other pool serves it, but it stays", nodeIPIP: "192.168.0.1", remove: true, daemon: &daemon{addresses: []string{"192.168.0.1"}, ready: true},
			timeout: 500 * time.Millisecond, wantDelete: 1, wantErr: "calico-node should remove it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := target
			if tc.remove {
				target.Kinds, target.Remove = nil, []calico.TunnelKind{calico.TunnelIPIP}
			}
			objs := []runtime.Object{node("node-1", tc.nodeIPIP), node("node-2", "192.168.0.2"), calicoNodePod("calico-node-other", "node-2", "uid-2", true)}
			old := calicoNodePod("calico-node-old", "node-1", "uid-old", true)
			if tc.resumed {
				objs = append(objs, calicoNodePod("calico-node-new", "node-1", "uid-new", true))
			} else {
				objs = append(objs, old)
			}
			kube := fake.NewClientset(objs...)
			tc.daemon.install(t, kube)
			pod := old
			if tc.resumed {
				pod = nil
			}
			res, err := Restart(context.Background(), kube, target, pod, "uid-old", tc.timeout, func() error { return nil })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if got := tc.daemon.deletes.Load(); got != tc.wantDelete {
				t.Errorf("deletes = %d, want %d", got, tc.wantDelete)
			}
			if res.Skipped != tc.wantSkip {
				t.Errorf("Skipped = %v, want %v", res.Skipped, tc.wantSkip)
			}
			if tc.wantAfter != "" && res.After[calico.TunnelIPIP].String() != tc.wantAfter {
				t.Errorf("After = %v, want %s", res.After, tc.wantAfter)
			}
			if (res.MaxGap > 0) != tc.wantGap {
				t.Errorf("MaxGap = %s, want a gap: %v", res.MaxGap, tc.wantGap)
			}
			// The other node's calico-node is never touched.
			if _, err := kube.CoreV1().Pods("calico-system").Get(context.Background(), "calico-node-other", metav1.GetOptions{}); err != nil {
				t.Errorf("node-2's calico-node: %v", err)
			}
		})
	}
}

func TestCalicoNodePods(t *testing.T) {
	impostor := calicoNodePod("calico-node-x", "node-1", "u3", true)
	impostor.Namespace = "default" // labelled, but not Calico's
	bare := calicoNodePod("calico-node-y", "node-2", "u4", true)
	bare.OwnerReferences = nil
	kube := fake.NewClientset(calicoNodePod("calico-node-a", "node-1", "u1", true), impostor, bare)
	got, err := CalicoNodePods(context.Background(), kube)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["node-1"] == nil || got["node-1"].Name != "calico-node-a" {
		t.Errorf("CalicoNodePods = %v, want only calico-node-a on node-1", got)
	}
}
