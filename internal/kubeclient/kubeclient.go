// Package kubeclient builds the Kubernetes clients every command and benchmark
// uses, so that they all talk to the API server the same, cheapest way.
package kubeclient

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// protobuf is the wire format of built-in types that the API server serves.
const protobuf = "application/vnd.kubernetes.protobuf"

// New returns the typed clientset, speaking protobuf, and the dynamic client,
// speaking JSON (custom resources such as Calico's have no protobuf form).
//
// Why protobuf: a migration watches every pod, ReplicaSet and budget in the cluster,
// and each moved pod produces a dozen watch events; decoding them as JSON was the
// largest share of runbook's CPU in test/bench/podmove, CPU the API server and the
// cluster's controllers need on a small control plane. kubectl and the controllers
// ask for protobuf for the same reason.
func New(cfg *rest.Config) (kubernetes.Interface, dynamic.Interface, error) {
	pb := rest.CopyConfig(cfg)
	pb.ContentType = protobuf
	pb.AcceptContentTypes = protobuf + ",application/json"
	kube, err := kubernetes.NewForConfig(pb)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("dynamic client: %w", err)
	}
	return kube, dyn, nil
}
