package sandbox

import (
	"bytes"
	_ "embed"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

//go:embed kwok-stages.yaml
var kwokStages []byte

// podReadyStage is the stage whose delay is the scenario's pod start delay.
const podReadyStage = "pod-ready"

// renderStages returns the kwok stage file with the pod start delay applied.
func renderStages(startDelay time.Duration) ([]byte, error) {
	docs := bytes.Split(kwokStages, []byte("\n---\n"))
	var out [][]byte
	found := false
	for _, doc := range docs {
		var stage map[string]any
		if err := yaml.Unmarshal(doc, &stage); err != nil {
			return nil, fmt.Errorf("kwok stages: %w", err)
		}
		if name, _, _ := unstructured.NestedString(stage, "metadata", "name"); name == podReadyStage {
			found = true
			if err := unstructured.SetNestedField(stage, startDelay.Milliseconds(), "spec", "delay", "durationMilliseconds"); err != nil {
				return nil, fmt.Errorf("kwok stages: setting %s delay: %w", podReadyStage, err)
			}
		}
		b, err := yaml.Marshal(stage)
		if err != nil {
			return nil, fmt.Errorf("kwok stages: %w", err)
		}
		out = append(out, b)
	}
	if !found {
		return nil, fmt.Errorf("kwok stages: no %s stage", podReadyStage)
	}
	return bytes.Join(out, []byte("---\n")), nil
}
