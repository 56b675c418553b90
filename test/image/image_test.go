// Package image checks the container image hack/image/build.sh makes with buildah:
// FROM scratch, one layer with one static binary, non-root, and the same digest when
// built twice.
package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const epoch = 1700000000 // SOURCE_DATE_EPOCH of both builds

// requireBuildah skips without buildah, except in CI, which installs it
// (hack/ci-deps.sh) and must run this.
func requireBuildah(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("buildah"); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("buildah is not installed: CI runs hack/ci-deps.sh first")
	}
	t.Skip("buildah is not installed (apt-get install -y buildah, or bash hack/ci-deps.sh)")
}

// build runs the build script into an OCI layout and returns its directory.
func build(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	cmd := exec.Command("bash", "../../hack/image/build.sh", "oci:"+dir+":runbook")
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-test", "SOURCE_DATE_EPOCH=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/image/build.sh: %v\n%s", err, out)
	}
	return dir
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}

type ociImage struct {
	dir      string
	manifest string // digest
	Config   struct {
		Created string `json:"created"`
		OS      string `json:"os"`
		Config  struct {
			User       string
			Entrypoint []string
			Env        []string
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct {
			Created string `json:"created"`
		} `json:"history"`
	}
	Layers []descriptor
}

func (img *ociImage) blob(t *testing.T, digest string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(img.dir, "blobs", strings.Replace(digest, ":", "/", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t *testing.T, dir string) *ociImage {
	t.Helper()
	img := &ociImage{dir: dir}
	var index struct{ Manifests []descriptor }
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(b, &index) != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v\n%s", err, b)
	}
	img.manifest = index.Manifests[0].Digest
	var m struct {
		Config descriptor
		Layers []descriptor
	}
	if err := json.Unmarshal(img.blob(t, img.manifest), &m); err != nil {
		t.Fatal(err)
	}
	img.Layers = m.Layers
	if err := json.Unmarshal(img.blob(t, m.Config.Digest), &img.Config); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImage(t *testing.T) {
	requireBuildah(t)
	first, second := load(t, build(t)), load(t, build(t))
	if first.manifest != second.manifest {
		t.Fatalf("two builds of the same commit differ: %s and %s", first.manifest, second.manifest)
	}
	t.Logf("image manifest %s (the same twice)", first.manifest)

	img := first
	created := time.Unix(epoch, 0).UTC().Format(time.RFC3339)
	cfg := img.Config.Config
	switch {
	case cfg.User != "65532:65532":
		t.Errorf("user %q, want 65532:65532 (non-root)", cfg.User)
	case strings.Join(cfg.Entrypoint, " ") != "/runbook":
		t.Errorf("entrypoint %q", cfg.Entrypoint)
	case img.Config.OS != "linux":
		t.Errorf("os %q", img.Config.OS)
	case img.Config.Created != created:
		t.Errorf("created %s, want %s (SOURCE_DATE_EPOCH)", img.Config.Created, created)
	case len(img.Layers) != 1 || len(img.Config.RootFS.DiffIDs) != 1:
		t.Errorf("%d layers, want 1 (FROM scratch, one binary)", len(img.Layers))
	}
	for _, h := range img.Config.History {
		if h.Created != created {
			t.Errorf("history entry created %s, want %s", h.Created, created)
		}
	}

	// The layer: exactly one file, the binary, owned by the non-root user, not writable.
	layer := img.blob(t, img.Layers[0].Digest)
	tr := tar.NewReader(bytes.NewReader(layer))
	var bin []byte
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		names = append(names, h.Name)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Uid != 65532 || h.Gid != 65532 || h.Mode&0o222 != 0 || h.ModTime.Unix() != epoch {
			t.Errorf("%s: uid %d gid %d mode %o mtime %s", h.Name, h.Uid, h.Gid, h.Mode, h.ModTime)
		}
		if bin, err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(names, ",") != "runbook" || bin == nil {
		t.Fatalf("layer holds %v, want only the binary", names)
	}

	// Static: no program interpreter, no shared libraries: it runs on scratch.
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	path := filepath.Join(t.TempDir(), "runbook")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "runbook v0.0.0-test") {
		t.Fatalf("the image's binary: %v: %s", err, out)
	}
}
