package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
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

// toolsFor lists the binaries a sandbox of the flavour starts from the tools
// directory, whatever the scenario. hack/build-tools.sh --flavour builds exactly
// these (and kubectl, for hack/sandbox.sh and tests); TestBuildSetsMatchFlavours
// keeps the two in step.
func toolsFor(flavour string) []string {
	tools := []string{Etcd, APIServer, ControllerManager, Scheduler, Kwok, tunnelAllocatorBinary, kubeControllersBinary}
	if flavour != FlavourCRD {
		tools = append(tools, calicoAPIServerBinary)
	}
	return tools
}

// missingTools reports the binaries of the flavour that toolsDir lacks, naming
// them and the command that builds them.
func missingTools(toolsDir, flavour string) error {
	var missing []string
	for _, bin := range toolsFor(flavour) {
		if _, err := os.Stat(filepath.Join(toolsDir, bin)); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("tools directory %s has no %s, which flavour %s starts: build it with `bash hack/build-tools.sh --flavour %s` "+
		"and pass the directory `bash hack/build-tools.sh --print-dir --flavour %s` prints (make test builds every flavour's)",
		toolsDir, strings.Join(missing, ", "), flavour, flavour, flavour)
}
