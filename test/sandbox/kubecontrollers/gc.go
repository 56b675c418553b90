package kubecontrollers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	"github.com/projectcalico/calico/libcalico-go/lib/ipam"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// annotationPodIPs is where the Calico CNI plugin records a pod's addresses;
// kube-controllers reads a pod's addresses through the same conversion.
const annotationPodIPs = "cni.projectcalico.org/podIPs"

// sync is one pass of kube-controllers' IPAM garbage collection (syncIPAM:
// checkAllocations, garbageCollectIPs, then releasing the affinities of deleted
// nodes). An address is a leak candidate when its pod is gone, runs on another
// node, or no longer has the address; a candidate is released after the grace
// period — at once when its node is gone too. Tunnel addresses go only with
// their node, once nothing valid is left on it. Empty blocks of live nodes are
// not released here (kube-controllers' checkEmptyBlocks is not mirrored).
func (c *Controller) sync(ctx context.Context) error {
	grace := c.gracePeriod()
	now := time.Now()
	byNode, err := c.allocationsByNode()
	if err != nil {
		return err
	}
	confirmed := map[string]allocation{}
	seen := map[string]bool{}
	var nodesToRelease []string
	for node, allocs := range byNode {
		nodeExists := c.nodeExists(node)
		canDelete := true
		var tunnels []allocation
		for _, a := range allocs {
			switch {
			case a.isTunnel():
				tunnels = append(tunnels, a)
				continue
			case !a.isPod():
				canDelete = false // unknown source: kube-controllers leaves it, and the node's blocks, alone
				continue
			}
			seen[a.id()] = true
			if c.valid(ctx, a, false) {
				canDelete = false
				delete(c.leaks, a.id())
				continue
			}
			if !nodeExists {
				confirmed[a.id()] = a
				continue
			}
			if grace <= 0 {
				continue // leak GC off (leakGracePeriod: 0)
			}
			since, ok := c.leaks[a.id()]
			if !ok {
				c.leaks[a.id()] = now
				c.logf("leak candidate %s", a.describe())
				since = now
			}
			if now.Sub(since) >= grace {
				confirmed[a.id()] = a
			}
		}
		if !nodeExists && canDelete {
			for _, a := range tunnels {
				confirmed[a.id()] = a
			}
			nodesToRelease = append(nodesToRelease, node)
		}
	}
	for id := range c.leaks {
		if !seen[id] {
			delete(c.leaks, id)
		}
	}

	var errs []error
	for _, a := range releasable(byNode, confirmed) {
		if c.valid(ctx, a, true) { // a last look at the live state
			delete(c.leaks, a.id())
			continue
		}
		_, err := c.cfg.Calico.IPAM().ReleaseIPs(ctx, ipam.ReleaseOptions{Address: a.ip.String(), Handle: a.handle})
		var missing cerrors.ErrorResourceDoesNotExist
		if err != nil && !errors.As(err, &missing) {
			errs = append(errs, fmt.Errorf("releasing leaked %s: %w", a.describe(), err))
			continue
		}
		delete(c.leaks, a.id())
		c.stats.released.Add(1)
		c.logf("released leaked %s", a.describe())
	}
	for _, node := range nodesToRelease {
		if err := c.cfg.Calico.IPAM().ReleaseHostAffinities(ctx, node, true); err != nil {
			errs = append(errs, fmt.Errorf("releasing the block affinities of deleted node %s: %w", node, err))
			continue
		}
		c.stats.nodes.Add(1)
		c.logf("released the block affinities of deleted node %s", node)
	}
	return errors.Join(errs...)
}

// releasable keeps the confirmed leaks whose handle is a leak everywhere: a
// dual-stack pod's two addresses share one handle, and kube-controllers
// releases a handle only when all of its addresses are leaked.
func releasable(byNode map[string][]allocation, confirmed map[string]allocation) []allocation {
	complete := map[string]bool{}
	for _, allocs := range byNode {
		for _, a := range allocs {
			_, ok := confirmed[a.id()]
			if prev, seen := complete[a.handle]; seen {
				complete[a.handle] = prev && ok
			} else {
				complete[a.handle] = ok
			}
		}
	}
	var out []allocation
	for _, a := range confirmed {
		if complete[a.handle] {
			out = append(out, a)
		}
	}
	return out
}

// allocationsByNode lists every allocation by node, with an entry (possibly
// empty) for every node that has an affine block.
func (c *Controller) allocationsByNode() (map[string][]allocation, error) {
	objs, err := c.blocks.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := map[string][]allocation{}
	live := map[string]bool{}
	for _, obj := range objs {
		u := obj.(*unstructured.Unstructured)
		if affinity, _, _ := unstructured.NestedString(u.Object, "spec", "affinity"); strings.HasPrefix(affinity, "host:") {
			if host := strings.TrimPrefix(affinity, "host:"); out[host] == nil {
				out[host] = []allocation{}
			}
		}
		allocs, err := c.blockAllocations(u)
		if err != nil {
			c.logf("skipping block: %v", err)
			continue
		}
		live[u.GetName()] = true
		for _, a := range allocs {
			out[a.node] = append(out[a.node], a)
		}
	}
	for name := range c.decoded {
		if !live[name] {
			delete(c.decoded, name)
		}
	}
	return out, nil
}

type decodedBlock struct {
	resourceVersion string
	allocations     []allocation
}

// blockAllocations decodes a block once per resourceVersion.
func (c *Controller) blockAllocations(u *unstructured.Unstructured) ([]allocation, error) {
	if d, ok := c.decoded[u.GetName()]; ok && d.resourceVersion == u.GetResourceVersion() {
		return d.allocations, nil
	}
	allocs, err := blockAllocations(u)
	if err != nil {
		return nil, err
	}
	c.decoded[u.GetName()] = decodedBlock{resourceVersion: u.GetResourceVersion(), allocations: allocs}
	return allocs, nil
}

// valid is kube-controllers' allocationIsValid: a tunnel address while its node
// exists; a pod address while the pod exists on the allocation's node and has
// the address (or has reported none yet). Allocations without pod attributes
// are assumed valid. live reads the pod from the API instead of the cache.
func (c *Controller) valid(ctx context.Context, a allocation, live bool) bool {
	if a.isTunnel() {
		return c.nodeExists(a.node)
	}
	ns, name := a.attrs[attrNamespace], a.attrs[attrPod]
	if ns == "" || name == "" {
		return true
	}
	var pod *corev1.Pod
	var err error
	if live {
		pod, err = c.cfg.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	} else {
		pod, err = c.pods.Pods(ns).Get(name)
	}
	if err != nil {
		return !apierrors.IsNotFound(err) // unsure: keep it
	}
	if pod.Spec.NodeName != "" && a.node != "" && pod.Spec.NodeName != a.node {
		return false
	}
	if pod.Status.PodIP == "" || len(pod.Status.PodIPs) == 0 {
		return true
	}
	for _, ip := range podAddresses(pod) {
		if ip == a.ip {
			return true
		}
	}
	return false
}

// podAddresses are a pod's addresses as Calico's pod→workload endpoint
// conversion sees them: the CNI plugin's annotation, else status.podIPs.
func podAddresses(pod *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	if raw := pod.Annotations[annotationPodIPs]; raw != "" {
		for _, s := range strings.Split(raw, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
				out = append(out, p.Addr())
			}
		}
		return out
	}
	for _, ip := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func (c *Controller) nodeExists(name string) bool {
	if name == "" {
		return false
	}
	_, err := c.nodes.Get(name)
	return err == nil
}
