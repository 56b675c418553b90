//go:build tools

// Package tools pins the Calico components the sandbox runs for real, all of the
// Calico release the main module's libcalico-go comes from, so
// hack/build-tools.sh can build them without the main module ever compiling them:
// the Calico API server (projectcalico.org/v3 aggregated API) and
// calico-kube-controllers. calico-node's tunnel-address allocator is
// ./cmd/calico-allocate-tunnel-addrs, a main around the real package.
//
// Why its own module: the Calico monorepo builds against k8s.io/* v0.29 (the
// replace block in go.mod is the monorepo's own, every staging module at
// v0.29.15), the main module against v0.37. github.com/projectcalico/api is
// replaced by the pinned pseudo-version because the calico module's zip does
// not contain its nested api module.
package tools

import (
	_ "github.com/projectcalico/calico/apiserver/cmd/apiserver"
	_ "github.com/projectcalico/calico/kube-controllers/cmd/kube-controllers"
)
