package sandbox

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/runbookdev/runbook/test/scenarios"
)

// ToolsDirEnv names the environment variable holding the directory of the built
// control-plane binaries (`bash hack/build-tools.sh --print-dir`).
const ToolsDirEnv = "RUNBOOK_TOOLS_DIR"

// Options configure Start. The zero value is usable when RUNBOOK_TOOLS_DIR is set.
type Options struct {
	// ToolsDir holds the binaries the flavour starts: kube-apiserver, etcd,
	// kube-controller-manager, kube-scheduler, kwok, calico-kube-controllers and
	// calico-allocate-tunnel-addrs, and calico-apiserver for every flavour but crd
	// (bash hack/build-tools.sh --print-dir --flavour <flavour>). Default:
	// $RUNBOOK_TOOLS_DIR.
	ToolsDir string
	// WorkDir receives certificates, etcd data, kubeconfigs and logs/. Default: a
	// new temporary directory, removed by Stop.
	WorkDir string
	// Scenario is the cluster to build. Default: the shipped "default" scenario.
	Scenario *scenarios.Scenario
	// Flavour is how Calico is installed: FlavourCRD (default), FlavourAPIServer,
	// FlavourOperator (tigera-operator v1.34.13) or FlavourOperatorV140 (v1.40.0).
	Flavour string
	// CalicoModuleDir is the checkout of the pinned github.com/projectcalico/calico
	// module whose manifests/calico.yaml is installed. Default: `go list -m`.
	CalicoModuleDir string
	// OperatorModuleDir is the checkout of github.com/tigera/operator v1.40.0 (the
	// version pinned by hack/tools-operator-v1.40) whose CRDs flavour
	// operator-v1.40 installs. Default: downloaded through hack/tools-operator-v1.40
	// with the go command. (Flavour operator's v1.34.13 CRDs come from the Calico
	// module, CalicoModuleDir.)
	OperatorModuleDir string
	// ReadyTimeout bounds the wait for nodes and scenario pods. Default: 2 minutes
	// plus 60 ms per scenario pod (the 2,000-pod scenario takes 1.5–2 minutes on
	// 2 cores).
	ReadyTimeout time.Duration
	// Progress receives one line per start-up phase. Default: discarded.
	Progress io.Writer
}

func (o Options) withDefaults() (Options, error) {
	if o.ToolsDir == "" {
		o.ToolsDir = os.Getenv(ToolsDirEnv)
	}
	if o.ToolsDir == "" {
		return o, fmt.Errorf("no tools directory: set Options.ToolsDir or %s (bash hack/build-tools.sh --print-dir)", ToolsDirEnv)
	}
	if o.Flavour == "" {
		o.Flavour = FlavourCRD
	}
	if err := CheckFlavour(o.Flavour); err != nil {
		return o, err
	}
	if err := missingTools(o.ToolsDir, o.Flavour); err != nil {
		return o, err
	}
	if o.Scenario == nil {
		s, err := scenarios.Load(scenarios.Default)
		if err != nil {
			return o, err
		}
		o.Scenario = s
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2*time.Minute + time.Duration(o.Scenario.PodCount())*60*time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// StartTimeout is how long a whole Start of scenario s may take: the readiness
// wait's default plus the rest of the start-up, with room for a busy machine.
func StartTimeout(s *scenarios.Scenario) time.Duration {
	return 5*time.Minute + time.Duration(s.PodCount())*100*time.Millisecond
}
