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

// operatorModule is tigera-operator at the version whose Installation API the
// operator flavour serves. It is pinned (with its go.sum line) by the tools
// module hack/tools-operator, which exists only for that: the main module never
// imports the operator.
const (
	operatorModule    = "github.com/tigera/operator"
	operatorToolsPath = "hack/tools-operator"
)

// operatorCRDs are the operator's CRDs the flavour installs: Installation (1.5 MB;
// envtest creates it, a client-side apply would not fit its annotation), APIServer
// and TigeraStatus.
var operatorCRDs = []string{
	"operator.tigera.io_installations.yaml",
	"operator.tigera.io_apiservers.yaml",
	"operator.tigera.io_tigerastatuses.yaml",
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
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, name := range operatorCRDs {
		path := filepath.Join(moduleDir, "pkg", "crds", "operator", name)
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
