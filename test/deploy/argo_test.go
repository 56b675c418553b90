package deploy

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/runbookdev/runbook/test/sandbox"
)

// argoModule is the Argo Workflows release whose CRD schema the template is checked
// against: its module zip carries manifests/base/crds/full (the complete OpenAPI
// schema, not the minimal one that preserves unknown fields).
const argoModule = "github.com/argoproj/argo-workflows/v3@v3.7.3"

// argoCRD downloads the module with the go command (the Go module proxy, cached) and
// returns the WorkflowTemplate CRD file.
func argoCRD(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", argoModule)
	cmd.Dir = t.TempDir() // outside this module: nothing is added to go.mod or go.sum
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", argoModule, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %s %v", argoModule, info.Error, err)
	}
	return filepath.Join(info.Dir, "manifests/base/crds/full/argoproj.io_workflowtemplates.yaml")
}

func templateSteps(t *testing.T, wt *unstructured.Unstructured) (order []string, byName map[string]map[string]any) {
	t.Helper()
	templates, _, _ := unstructured.NestedSlice(wt.Object, "spec", "templates")
	byName = map[string]map[string]any{}
	for _, x := range templates {
		m := x.(map[string]any)
		byName[m["name"].(string)] = m
	}
	entry, _, _ := unstructured.NestedString(wt.Object, "spec", "entrypoint")
	steps, ok := byName[entry]["steps"].([]any)
	if !ok {
		t.Fatalf("entrypoint %q has no steps", entry)
	}
	for _, group := range steps {
		parallel := group.([]any)
		if len(parallel) != 1 {
			t.Fatalf("a step group runs %d steps in parallel: clusters must go one at a time", len(parallel))
		}
		s := parallel[0].(map[string]any)
		order = append(order, s["name"].(string)+"="+s["template"].(string))
	}
	return order, byName
}

// TestArgoWorkflowTemplate: the fleet template runs dev, staging, an approval, then
// prod, one at a time, each with the runbook image and its environment; and the
// apiserver accepts it against Argo's own CRD schema (server-side dry run with strict
// field validation), while a misspelt field is refused.
func TestArgoWorkflowTemplate(t *testing.T) {
	objs := readObjects(t, "../../deploy/argo/workflowtemplate.yaml")
	if len(objs) != 1 || objs[0].GetKind() != "WorkflowTemplate" {
		t.Fatalf("want one WorkflowTemplate, got %d objects", len(objs))
	}
	wt := objs[0]
	order, byName := templateSteps(t, wt)
	if got := strings.Join(order, " → "); got != "dev=apply → staging=apply → approve-prod=approval → prod=apply" {
		t.Fatalf("fleet order: %s", got)
	}
	if _, ok := byName["approval"]["suspend"]; !ok {
		t.Fatal("the approval step does not suspend")
	}
	args, _, _ := unstructured.NestedStringSlice(byName["apply"], "container", "args")
	if strings.Join(args[:4], " ") != "apply /runbook/runbook.yaml --env {{inputs.parameters.env}}" || !strings.Contains(strings.Join(args, " "), "--yes") {
		t.Fatalf("apply step args: %v", args)
	}

	c := sandbox.ForTest(t)
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.RESTConfig())
	a := newApplier(t, c.RESTConfig())
	crds := readObjects(t, argoCRD(t))
	for _, u := range crds {
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatalf("install Argo CRD %s: %v", u.GetName(), err)
		}
		waitEstablished(t, ext, u.GetName())
	}
	for _, u := range readObjects(t, "../../deploy/rbac.yaml") { // the namespace
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.apply(ctx, wt, true); err != nil {
		t.Fatalf("server-side dry run of the WorkflowTemplate: %v", err)
	}
	bad := wt.DeepCopy()
	templates, _, _ := unstructured.NestedSlice(bad.Object, "spec", "templates")
	templates[1].(map[string]any)["suspnd"] = map[string]any{}
	_ = unstructured.SetNestedSlice(bad.Object, templates, "spec", "templates")
	if err := a.apply(ctx, bad, true); err == nil || !strings.Contains(err.Error(), "suspnd") {
		t.Fatalf("a misspelt field passed the schema: %v", err)
	}
}

func waitEstablished(t *testing.T, ext apiextensionsclient.Interface, name string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("CRD %s not established", name)
}

// TestManifestsServerSideDryRun: everything in deploy/ is accepted by the apiserver
// as written (strict field validation), and a misspelt field is not.
func TestManifestsServerSideDryRun(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx := context.Background()
	a := newApplier(t, c.RESTConfig())
	rbac := readObjects(t, "../../deploy/rbac.yaml")
	if err := a.apply(ctx, rbac[0], false); err != nil { // the namespace, for the namespaced dry runs
		t.Fatal(err)
	}
	for _, file := range []string{"rbac.yaml", "job.yaml"} {
		for _, u := range readObjects(t, filepath.Join("../../deploy", file)) {
			if err := a.apply(ctx, u, true); err != nil {
				t.Errorf("%s: %s %s: %v", file, u.GetKind(), u.GetName(), err)
			}
		}
	}
	job := readObjects(t, "../../deploy/job.yaml")[0]
	_ = unstructured.SetNestedField(job.Object, int64(3), "spec", "backofLimit")
	if err := a.apply(ctx, job, true); err == nil || !strings.Contains(err.Error(), "backofLimit") {
		t.Fatalf("a misspelt Job field passed: %v", err)
	}
	if _, err := os.Stat("../../deploy/argo/workflowtemplate.yaml"); err != nil {
		t.Fatal(err)
	}
}
