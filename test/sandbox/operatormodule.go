package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The operator flavours install tigera-operator's own CRDs (Installation,
// APIServer, TigeraStatus) of the release they model:
//
//   - v1.34.13 (flavour operator): from the pinned Calico module, which ships
//     them in charts/tigera-operator/crds/operator.tigera.io_*_crd.yaml — the
//     files of tigera/operator v1.34.13's pkg/crds/operator, byte for byte
//     (sha256 of the Installation CRD 91fbedca…). The module proxy does not
//     serve github.com/tigera/operator v1.34.x, so no tools module can pin it.
//   - v1.40.0 (flavour operator-v1.40): from github.com/tigera/operator, pinned
//     (with its go.sum line) by the tools module hack/tools-operator-v1.40,
//     which exists only for that: the main module never imports the operator.
const (
	operatorModule    = "github.com/tigera/operator"
	operatorToolsPath = "hack/tools-operator-v1.40"
)

// operatorCRDNames are the operator's CRDs the flavours install: Installation
// (1.3–1.5 MB; envtest creates it, a client-side apply would not fit its
// annotation), APIServer and TigeraStatus.
var operatorCRDNames = []string{"installations", "apiservers", "tigerastatuses"}

// operatorCRDs loads the CRDs of an operator flavour's release: v1.34.13's
// from the Calico module in calicoDir, v1.40.0's from the tigera/operator
// module in operatorDir ("": downloaded through its tools module).
func operatorCRDs(ctx context.Context, flavour, calicoDir, operatorDir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	switch flavour {
	case FlavourOperator:
		return loadCalicoChartOperatorCRDs(calicoDir)
	case FlavourOperatorV140:
	default:
		return nil, fmt.Errorf("flavour %s installs no operator CRDs", flavour)
	}
	dir := operatorDir
	if dir == "" {
		var err error
		if dir, err = operatorModuleDir(ctx); err != nil {
			return nil, err
		}
	}
	return loadOperatorCRDs(dir)
}

// loadCalicoChartOperatorCRDs reads the operator CRDs the Calico module's
// tigera-operator chart ships (those of the operator release the chart installs,
// charts/tigera-operator/values.yaml tigeraOperator.version).
func loadCalicoChartOperatorCRDs(calicoDir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	paths := make([]string, 0, len(operatorCRDNames))
	for _, name := range operatorCRDNames {
		paths = append(paths, filepath.Join(calicoDir, "charts", "tigera-operator", "crds", "operator.tigera.io_"+name+"_crd.yaml"))
	}
	return readCRDs(paths)
}

// operatorModuleDir downloads (once; later from the module cache) the pinned
// operator module through hack/tools-operator, verified by its go.sum, and
// returns its directory.
func operatorModuleDir(ctx context.Context) (string, error) {
	root, err := goCommand(ctx, "", "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return "", fmt.Errorf("locating the repository: %w", err)
	}
	out, err := goCommand(ctx, filepath.Join(root, operatorToolsPath), "mod", "download", "-json", operatorModule)
	if err != nil {
		return "", fmt.Errorf("downloading %s (pinned in %s): %w", operatorModule, operatorToolsPath, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &mod); err != nil {
		return "", fmt.Errorf("downloading %s: %w", operatorModule, err)
	}
	if mod.Error != "" || mod.Dir == "" {
		return "", fmt.Errorf("downloading %s: %s", operatorModule, mod.Error)
	}
	return mod.Dir, nil
}

// loadOperatorCRDs reads the operator's CRDs from its module.
func loadOperatorCRDs(moduleDir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	paths := make([]string, 0, len(operatorCRDNames))
	for _, name := range operatorCRDNames {
		paths = append(paths, filepath.Join(moduleDir, "pkg", "crds", "operator", "operator.tigera.io_"+name+".yaml"))
	}
	return readCRDs(paths)
}

func readCRDs(paths []string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("operator CRD: %w", err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil {
			return nil, fmt.Errorf("operator CRD %s: %w", path, err)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// goCommand runs the go command in dir ("" = the current directory) and returns
// its trimmed output.
func goCommand(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
