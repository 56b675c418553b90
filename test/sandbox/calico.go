package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// calicoModule is the pinned Calico monorepo; its manifests/calico.yaml is what the
// manifest-install flavour installs, so the CRDs, RBAC and calico-config are exactly
// those of the Calico release the project's libcalico-go comes from.
const calicoModule = "github.com/projectcalico/calico"

// calicoManifest is manifests/calico.yaml of the pinned module, split up.
type calicoManifest struct {
	crds    []*apiextensionsv1.CustomResourceDefinition
	objects []*unstructured.Unstructured // everything else, in file order
	version string                       // e.g. v3.28.5, from the calico/node image tag
}

// calicoModuleDir finds the pinned module in the module cache through the go
// command, which works from any directory inside this repository (tests, go run).
func calicoModuleDir(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", calicoModule)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating %s with go list: %w: %s", calicoModule, err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("%s is not in the module cache: run go mod download %s", calicoModule, calicoModule)
	}
	return dir, nil
}

func loadCalicoManifest(moduleDir string) (*calicoManifest, error) {
	path := filepath.Join(moduleDir, "manifests", "calico.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading Calico manifest: %w", err)
	}
	objs, err := decodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	crds, rest, err := splitCRDs(objs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := &calicoManifest{crds: crds, objects: rest}
	if m.version, err = calicoNodeVersion(rest); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// calicoNodeVersion reads the release from the calico-node container image tag.
func calicoNodeVersion(objs []*unstructured.Unstructured) (string, error) {
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" || o.GetName() != "calico-node" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			c, _ := c.(map[string]any)
			if c["name"] != "calico-node" {
				continue
			}
			image, _ := c["image"].(string)
			if i := strings.LastIndexByte(image, ':'); i >= 0 {
				return image[i+1:], nil
			}
		}
	}
	return "", fmt.Errorf("no calico-node container image with a tag")
}
