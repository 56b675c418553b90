//go:build tools

// Package tools pins the control-plane commands that hack/build-tools.sh builds.
// The build tag keeps this file out of every normal build; the imports only keep
// `go mod tidy` from dropping the requirements.
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
