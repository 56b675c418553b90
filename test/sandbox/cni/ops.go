package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	"github.com/projectcalico/calico/libcalico-go/lib/ipam"
	cnet "github.com/projectcalico/calico/libcalico-go/lib/net"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The annotations Calico's CNI plugin writes on a pod (libcalico-go
// backend/k8s/conversion): the addresses as CIDRs, and the sandbox's container ID,
// from which the IPAM handle is derived at DEL.
const (
	AnnotationPodIP       = "cni.projectcalico.org/podIP"
	AnnotationPodIPs      = "cni.projectcalico.org/podIPs"
	AnnotationContainerID = "cni.projectcalico.org/containerID"
)

// Action is what a pod needs from the network plugin.
type Action int

const (
	None Action = iota
	Add         // running on a node without addresses: CNI ADD
	Del         // terminating or finished with addresses: CNI DEL
)

// WantedAction decides from a pod's state alone, so it can run in event handlers.
// Host-network pods never involve the CNI plugin.
func WantedAction(pod *corev1.Pod) Action {
	if pod.Spec.NodeName == "" || pod.Spec.HostNetwork {
		return None
	}
	ips, hasIPs := pod.Annotations[AnnotationPodIPs]
	finished := pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	switch {
	case finished && ips != "":
		return Del
	case !finished && !hasIPs:
		return Add
	}
	return None
}

func (p *Plugin) process(ctx context.Context, q *nodeQueue, t task) error {
	if t.handle != "" {
		return p.release(ctx, t.handle)
	}
	pod, err := p.pods.Pods(t.pod.Namespace).Get(t.pod.Name)
	if apierrors.IsNotFound(err) {
		return nil // gone: onPodGone queued the release
	}
	if err != nil {
		return fmt.Errorf("cni: reading pod %s: %w", t.pod, err)
	}
	if pod.Spec.NodeName != q.node {
		return nil // a new pod with the old name, queued on its own node
	}
	switch WantedAction(pod) {
	case Add:
		if p.hasSandbox(pod.UID) {
			return nil // set up already; the lister lags behind our patch
		}
		return p.add(ctx, q, pod)
	case Del:
		if left := p.shutdownLeft(pod); left > 0 {
			q.queue.AddAfter(t, left) // the containers are still shutting down
			return nil
		}
		return p.del(ctx, pod)
	}
	return nil
}

// add is CNI ADD with calico-ipam for a new sandbox of pod.
func (p *Plugin) add(ctx context.Context, q *nodeQueue, pod *corev1.Pod) error {
	containerID := p.cfg.NewContainerID()
	conf, err := p.netConf()
	if err != nil {
		return p.failed(q, pod, containerID, err)
	}
	handle := conf.Name + "." + containerID
	v4, v6, err := p.assign(ctx, conf, pod, handle)
	if err != nil {
		// The kubelet runs CNI DEL on a sandbox whose ADD failed, releasing whatever
		// the failed attempt had assigned.
		_ = p.release(ctx, handle)
		return p.failed(q, pod, containerID, err)
	}
	ips := append(hostCIDRs(v4), hostCIDRs(v6)...)
	err = p.patchAnnotations(ctx, pod, map[string]string{
		AnnotationPodIP:       ips[0],
		AnnotationPodIPs:      strings.Join(ips, ","),
		AnnotationContainerID: containerID,
	})
	if err != nil {
		_ = p.release(ctx, handle)
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // the pod is gone or replaced: nothing to set up any more
		}
		return fmt.Errorf("cni: writing addresses of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	p.recordSandbox(pod.UID)
	p.nAssigned.Add(1)
	return nil
}

// assign requests addresses exactly as the calico-ipam plugin does.
func (p *Plugin) assign(ctx context.Context, conf NetConf, pod *corev1.Pod, handle string) (v4, v6 []cnet.IPNet, err error) {
	ns, err := p.namespaces.Get(pod.Namespace)
	if apierrors.IsNotFound(err) {
		// A pod can reach us before its brand-new namespace reaches the lister; the
		// real plugin reads the namespace from the API server on every ADD.
		ns, err = p.cfg.Plugin.CoreV1().Namespaces().Get(ctx, pod.Namespace, metav1.GetOptions{})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading namespace %s: %w", pod.Namespace, err)
	}
	reqV4, reqV6, err := RequestedPools(conf.IPAM, ns.Annotations, pod.Annotations)
	if err != nil {
		return nil, nil, err
	}
	var pools []v3.IPPool
	if len(reqV4)+len(reqV6) > 0 {
		list, err := p.cfg.Calico.IPPools().List(ctx, options.ListOptions{})
		if err != nil {
			return nil, nil, err
		}
		pools = list.Items
	}
	v4Pools, err := ResolvePools(pools, reqV4, true)
	if err != nil {
		return nil, nil, err
	}
	v6Pools, err := ResolvePools(pools, reqV6, false)
	if err != nil {
		return nil, nil, err
	}
	num4, num6 := conf.IPAM.Counts()
	node := pod.Spec.NodeName
	v4Assigned, v6Assigned, err := p.cfg.Calico.IPAM().AutoAssign(ctx, ipam.AutoAssignArgs{
		Num4:      num4,
		Num6:      num6,
		HandleID:  &handle,
		Hostname:  node,
		IPv4Pools: v4Pools,
		IPv6Pools: v6Pools,
		Attrs: map[string]string{
			ipam.AttributeNode:      node,
			ipam.AttributeNamespace: pod.Namespace,
			ipam.AttributePod:       pod.Name,
			ipam.AttributeTimestamp: time.Now().UTC().String(),
		},
		IntendedUse: v3.IPPoolAllowedUseWorkload,
	})
	if err != nil {
		return nil, nil, err
	}
	if num4 > 0 {
		if err := v4Assigned.PartialFulfillmentError(); err != nil {
			return nil, nil, fmt.Errorf("failed to request IPv4 addresses: %w", err)
		}
		v4 = v4Assigned.IPs
	}
	if num6 > 0 {
		if err := v6Assigned.PartialFulfillmentError(); err != nil {
			return nil, nil, fmt.Errorf("failed to request IPv6 addresses: %w", err)
		}
		v6 = v6Assigned.IPs
	}
	if len(v4)+len(v6) == 0 {
		return nil, nil, errors.New("no addresses requested (assign_ipv4 and assign_ipv6 are both off)")
	}
	return v4, v6, nil
}

// del is CNI DEL: release the sandbox's handle and clear the address annotations
// (Calico keeps containerID so a repeated DEL can tell which sandbox it saw).
func (p *Plugin) del(ctx context.Context, pod *corev1.Pod) error {
	if handle := p.handle(pod); handle != "" {
		if err := p.release(ctx, handle); err != nil {
			return err
		}
	}
	err := p.patchAnnotations(ctx, pod, map[string]string{AnnotationPodIP: "", AnnotationPodIPs: ""})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("cni: clearing addresses of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	p.forgetSandbox(pod.UID)
	return nil
}

// release frees a handle's addresses; a handle already gone is released.
func (p *Plugin) release(ctx context.Context, handle string) error {
	err := p.cfg.Calico.IPAM().ReleaseByHandle(ctx, handle)
	var missing cerrors.ErrorResourceDoesNotExist
	if err != nil && !errors.As(err, &missing) {
		return fmt.Errorf("cni: releasing %s: %w", handle, err)
	}
	if err == nil {
		p.nReleased.Add(1)
	}
	return nil
}

// handle is the IPAM handle of the pod's current sandbox, from the container ID
// recorded at ADD; "" if there is none.
func (p *Plugin) handle(pod *corev1.Pod) string {
	id := pod.Annotations[AnnotationContainerID]
	if id == "" {
		return ""
	}
	name := DefaultNetConf.Name
	if conf, err := p.netConf(); err == nil {
		name = conf.Name
	}
	return name + "." + id
}

// netConf is the CNI configuration the node's kubelet would find in /etc/cni/net.d,
// as install-cni writes it from calico-config.
func (p *Plugin) netConf() (NetConf, error) {
	cm, err := p.configMaps.ConfigMaps(ConfigMapNamespace).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		return NetConf{}, errors.New("network plugin is not ready: cni config uninitialized")
	}
	if err != nil {
		return NetConf{}, err
	}
	return ParseNetConf(cm.Data[ConfigMapKey])
}

// patchAnnotations patches the pod's status subresource with a UID precondition,
// exactly like libcalico-go's WorkloadEndpoint client does for the CNI plugin.
func (p *Plugin) patchAnnotations(ctx context.Context, pod *corev1.Pod, annotations map[string]string) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": annotations, "uid": pod.UID},
	})
	if err != nil {
		return err
	}
	_, err = p.cfg.Plugin.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// failed records a failed ADD the way the kubelet reports it, with containerd's
// wording around the plugin's own error, and returns it for a retry.
func (p *Plugin) failed(q *nodeQueue, pod *corev1.Pod, containerID string, err error) error {
	p.nFailed.Add(1)
	q.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox",
		"Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox %q: plugin type=\"calico\" failed (add): %v",
		containerID, err)
	return fmt.Errorf("cni: ADD for pod %s/%s: %w", pod.Namespace, pod.Name, err)
}

// hostCIDRs formats addresses as the CNI result does: /32 or /128.
func hostCIDRs(ips []cnet.IPNet) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		bits := 128
		if ip.IP.To4() != nil {
			bits = 32
		}
		out = append(out, (&net.IPNet{IP: ip.IP, Mask: net.CIDRMask(bits, bits)}).String())
	}
	return out
}
