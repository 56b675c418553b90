package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/runbookdev/runbook/actions"
)

// checkedIn is the schema file in the repository.
func checkedIn(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("runbook.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckedInIsUpToDate fails when an action declaration changed without
// regenerating the checked-in schema (make schema).
func TestCheckedInIsUpToDate(t *testing.T) {
	got, err := Generate(actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile("runbook.schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, checkedIn(t)) {
		t.Fatal("schema/runbook.schema.json is stale: run `make schema`")
	}
}

// TestSchemaMatchesRegistry checks that every action and parameter of the registry
// appears in the schema with its required list.
func TestSchemaMatchesRegistry(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(checkedIn(t), &s); err != nil {
		t.Fatal(err)
	}
	defs := s["$defs"].(map[string]any)
	for _, d := range actions.Default.Actions() {
		w, ok := defs["with."+d.Name].(map[string]any)
		if !ok {
			t.Errorf("no schema for action %s", d.Name)
			continue
		}
		props := w["properties"].(map[string]any)
		if len(props) != len(d.Params) {
			t.Errorf("%s: schema has %d parameters, registry %d", d.Name, len(props), len(d.Params))
		}
		var req []string
		for _, p := range d.Params {
			if _, ok := props[p.Name]; !ok {
				t.Errorf("%s: parameter %s missing from the schema", d.Name, p.Name)
			}
			if p.Required {
				req = append(req, p.Name)
			}
		}
		var got []string
		if r, ok := w["required"].([]any); ok {
			for _, x := range r {
				got = append(got, x.(string))
			}
		}
		if strings.Join(got, ",") != strings.Join(req, ",") {
			t.Errorf("%s: required %v, registry %v", d.Name, got, req)
		}
	}
}

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(checkedIn(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(ID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(ID)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func yamlToJSONValue(t *testing.T, file string) any {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExamplesValidateAgainstSchema checks the examples with an independent
// JSON-Schema implementation, as an editor or CI would.
func TestExamplesValidateAgainstSchema(t *testing.T) {
	sch := compile(t)
	files, _ := filepath.Glob("../examples/*/runbook.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		if err := sch.Validate(yamlToJSONValue(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestSchemaRejects checks that the schema catches what editors should flag.
func TestSchemaRejects(t *testing.T) {
	sch := compile(t)
	for _, f := range []string{
		"01-unknown-top-field.yaml", "02-wrong-apiversion.yaml", "04-unknown-action.yaml", "05-unknown-with-param.yaml",
		"06-missing-with.yaml", "07-with-wrong-type.yaml", "08-with-enum.yaml", "20-param-bad-type.yaml",
		"24-bad-step-id.yaml", "25-rollback-on-point-of-no-return.yaml",
	} {
		if err := sch.Validate(yamlToJSONValue(t, filepath.Join("../runbooks/testdata/broken", f))); err == nil {
			t.Errorf("%s: schema accepted it", f)
		}
	}
}
