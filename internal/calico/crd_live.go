package calico

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
)

// crdLive is the Reader of the CRD flavour that asks the API server every time
// (paginated lists), for the checks of a point of no return.
type crdLive struct {
	kube    kubernetes.Interface
	dyn     dynamic.Interface
	poolGVR schema.GroupVersionResource
}

// listCRD lists a Calico resource page by page and converts every item; items that
// fail to convert are collected into the error, the rest returned.
func listCRD[T any](ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, convert func(*unstructured.Unstructured) (T, error)) ([]T, error) {
	var out []T
	var bad []error
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return dyn.Resource(gvr).List(ctx, opts)
	})
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("unexpected %T in %s list", obj, gvr.Resource)
		}
		v, err := convert(u)
		if err != nil {
			bad = append(bad, err)
			return nil
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", gvr.Resource, err)
	}
	return out, errors.Join(bad...)
}

func (l *crdLive) Pools(ctx context.Context) ([]Pool, error) {
	return listCRD(ctx, l.dyn, l.poolGVR, poolFromObject)
}

func (l *crdLive) Blocks(ctx context.Context) ([]Block, error) {
	return listCRD(ctx, l.dyn, gvrBlocks, blockFromObject)
}

func (l *crdLive) Affinities(ctx context.Context) ([]Affinity, error) {
	return listCRD(ctx, l.dyn, gvrAffinities, affinityFromObject)
}

func (l *crdLive) Pods(ctx context.Context) ([]Pod, error) {
	var out []Pod
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return l.kube.CoreV1().Pods("").List(ctx, opts)
	})
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		if pod, ok := obj.(*corev1.Pod); ok {
			out = append(out, podFromObject(pod))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	return out, nil
}

func (l *crdLive) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return l.kube.CoreV1().Nodes().List(ctx, opts)
	})
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		if n, ok := obj.(*corev1.Node); ok {
			out = append(out, NodeFromObject(n))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}

func (l *crdLive) ClusterCIDRs(ctx context.Context) ([]CIDRSource, error) {
	var cms []corev1.ConfigMap
	for _, name := range []string{kubeadmConfigMap, kubeProxyConfigMap} {
		cm, err := l.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("get ConfigMap kube-system/%s: %w", name, err)
		}
		cms = append(cms, *cm)
	}
	kcm, err := l.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: kcmComponentLabel + "=" + kcmComponent})
	if err != nil {
		return nil, fmt.Errorf("list kube-controller-manager pods: %w", err)
	}
	return ClusterCIDRSources(cms, kcm.Items)
}
