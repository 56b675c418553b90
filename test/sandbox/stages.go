package sandbox

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

//go:embed kwok-stages.yaml
var kwokStages []byte

// startStages are the stages that start a pod once it has its addresses; their
// default delay is the scenario's pod start delay (a pod's start-delay annotation
// overrides it).
var startStages = []string{"pod-ready", "pod-start-probed", "pod-never-ready", "pod-crash-loop"}

// renderStages returns the kwok stage file with the pod start delay applied.
func renderStages(startDelay time.Duration) ([]byte, error) {
	docs := bytes.Split(kwokStages, []byte("\n---\n"))
	var out [][]byte
	found := 0
	for _, doc := range docs {
		var stage map[string]any
		if err := yaml.Unmarshal(doc, &stage); err != nil {
			return nil, fmt.Errorf("kwok stages: %w", err)
		}
		if name, _, _ := unstructured.NestedString(stage, "metadata", "name"); slices.Contains(startStages, name) {
			found++
			if err := unstructured.SetNestedField(stage, startDelay.Milliseconds(), "spec", "delay", "durationMilliseconds"); err != nil {
				return nil, fmt.Errorf("kwok stages: setting %s delay: %w", name, err)
			}
		}
		b, err := yaml.Marshal(stage)
		if err != nil {
			return nil, fmt.Errorf("kwok stages: %w", err)
		}
		out = append(out, b)
	}
	if found != len(startStages) {
		return nil, fmt.Errorf("kwok stages: %d of the start stages %v found", found, startStages)
	}
	return bytes.Join(out, []byte("---\n")), nil
}
