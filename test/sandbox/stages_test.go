package sandbox

import (
	"bytes"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestRenderStagesSetsOnlyTheStartDelays(t *testing.T) {
	out, err := renderStages(1500 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(out, []byte("---\n"))
	if want := len(bytes.Split(kwokStages, []byte("\n---\n"))); len(docs) != want {
		t.Fatalf("%d stages rendered, want %d", len(docs), want)
	}
	delays := map[string]float64{} // JSON numbers
	for _, doc := range docs {
		var stage map[string]any
		if err := yaml.Unmarshal(doc, &stage); err != nil {
			t.Fatal(err)
		}
		name, _, _ := unstructured.NestedString(stage, "metadata", "name")
		tmpl, _, _ := unstructured.NestedString(stage, "spec", "next", "statusTemplate")
		if name != "pod-delete" && name != "pod-delete-after-cni-del" && tmpl == "" {
			t.Errorf("stage %s lost its status template", name)
		}
		if d, ok, _ := unstructured.NestedFieldNoCopy(stage, "spec", "delay", "durationMilliseconds"); ok {
			delays[name], _ = d.(float64)
		}
	}
	for _, name := range startStages {
		if delays[name] != 1500 {
			t.Errorf("%s delay = %v ms, want 1500", name, delays[name])
		}
	}
	if delays["pod-crash-loop-restart"] != 10000 || delays["pod-complete"] != 0 {
		t.Errorf("fault stage delays changed: %v", delays)
	}
	if delays["node-heartbeat"] != 20000 {
		t.Errorf("node-heartbeat delay changed: %v", delays["node-heartbeat"])
	}
}
