package sandbox

import (
	"fmt"
	"slices"
	"strings"
)

// The ways Calico is installed, as Options.Flavour.
const (
	// FlavourCRD is the manifest install (calico.yaml): crd.projectcalico.org/v1
	// CRDs, calico-config with calico-ipam, calico-node creating the pools.
	FlavourCRD = "crd"
	// FlavourAPIServer is the manifest install plus the Calico API server: the
	// projectcalico.org/v3 aggregated API with Calico's validation and defaulting.
	FlavourAPIServer = "apiserver"
)

// Flavours lists the supported flavours.
func Flavours() []string {
	return []string{FlavourCRD, FlavourAPIServer, FlavourOperator, FlavourOperatorV140}
}

// OperatorFlavours lists the tigera-operator flavours: the operator the pinned
// Calico ships, and a newer one.
func OperatorFlavours() []string { return []string{FlavourOperator, FlavourOperatorV140} }

// IsOperatorFlavour reports whether flavour is a tigera-operator install.
func IsOperatorFlavour(flavour string) bool { return slices.Contains(OperatorFlavours(), flavour) }

// CheckFlavour reports whether name is a supported flavour.
func CheckFlavour(name string) error {
	if !slices.Contains(Flavours(), name) {
		return fmt.Errorf("flavour %q is not supported (supported: %s)", name, strings.Join(Flavours(), ", "))
	}
	return nil
}

// toolsFor lists the binaries a flavour needs from the tools directory.
func toolsFor(flavour string) []string {
	tools := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
	if flavour != FlavourCRD {
		tools = append(tools, calicoAPIServerBinary)
	}
	return tools
}
