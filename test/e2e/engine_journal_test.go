package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/runbooks"
	"github.com/runbookdev/runbook/test/sandbox"
)

// TestConfigMapJournalOnRealAPIServer checks the journal's compare-and-swap and
// integrity check against a real kube-apiserver (the fake clientset does not enforce
// resourceVersion preconditions, so only a real server proves them).
func TestConfigMapJournalOnRealAPIServer(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ns := createNamespace(ctx, t, cs, "journal-cas")
	store := &engine.ConfigMapStore{Client: cs, Namespace: ns, Name: "runbook-test"}

	j, rev, err := store.Load(ctx)
	if err != nil || j != nil || rev != "" {
		t.Fatalf("empty store: %v %v %q", j, err, rev)
	}
	rev1, err := store.Save(ctx, &engine.Journal{RunID: "r1", Runbook: "x", Status: engine.StatusRunning}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Save(ctx, &engine.Journal{RunID: "r2"}, ""); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	rev2, err := store.Save(ctx, &engine.Journal{RunID: "r1", Runbook: "x", Status: engine.StatusDone}, rev1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Save(ctx, &engine.Journal{RunID: "r3"}, rev1); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("stale resourceVersion must conflict: %v", err)
	}
	j, rev, err = store.Load(ctx)
	if err != nil || j.Status != engine.StatusDone || rev != rev2 {
		t.Fatalf("load: %+v %v %q (want rev %q)", j, err, rev, rev2)
	}
	cm, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, "runbook-test", metav1.GetOptions{})
	cm.Data["journal.json"] = strings.Replace(cm.Data["journal.json"], `"status":"done"`, `"status":"running"`, 1)
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Load(ctx); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("hand-edited journal must be detected: %v", err)
	}
}

// TestEngineResumeOnRealAPIServer runs a three-step runbook whose action writes
// ConfigMaps, kills it inside the second step, resumes it, and re-runs it.
func TestEngineResumeOnRealAPIServer(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ns := createNamespace(ctx, t, cs, "engine-resume")
	reg := actions.NewRegistry()
	reg.Add(&actions.Decl{Name: "putConfigMap", Summary: "test", Params: []actions.Param{{Name: "name", Spec: value.Spec{Type: value.String, Required: true}}}})
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: resume}
steps:
  - {id: one, action: putConfigMap, with: {name: one}}
  - {id: two, action: putConfigMap, with: {name: two}}
  - {id: three, action: putConfigMap, with: {name: three}}
`
	rb, err := runbooks.Parse("resume.yaml", []byte(src), reg)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	store := &engine.ConfigMapStore{Client: cs, Namespace: ns, Name: "runbook-resume"}
	var applied []string
	run := func(killIn string) (*engine.Report, error) {
		runCtx, kill := context.WithCancel(ctx)
		defer kill()
		act := &cmAction{cs: cs, ns: ns, applied: &applied, killIn: killIn, kill: kill}
		return engine.Run(runCtx, engine.Options{Runbook: rb, Params: params, Store: store, Holder: "e2e",
			Impls: map[string]actions.Impl{"putConfigMap": act}})
	}
	rep, err := run("two")
	if exitcode.Of(err) != exitcode.Interrupted {
		t.Fatalf("want interrupted, got %v", err)
	}
	rep2, err := run("")
	if err != nil || !rep2.Resumed || rep2.RunID != rep.RunID {
		t.Fatalf("resume: %v %+v", err, rep2)
	}
	// "two" ran twice (killed once, then converged), "one" once: nothing done is redone.
	if got := strings.Join(applied, ","); got != "one,two,two,three" {
		t.Fatalf("applied %s", got)
	}
	rep3, err := run("")
	if err != nil || rep3.Resumed {
		t.Fatalf("re-run: %v", err)
	}
	for _, s := range rep3.Steps {
		if s.Changed {
			t.Errorf("re-run changed %s", s.ID)
		}
	}
}

type cmAction struct {
	cs      kubernetes.Interface
	ns      string
	applied *[]string
	killIn  string
	kill    context.CancelFunc
}

func (a *cmAction) Apply(ctx context.Context, c *actions.Call) (actions.Outcome, error) {
	name := c.With["name"].(string)
	*a.applied = append(*a.applied, name)
	_, err := a.cs.CoreV1().ConfigMaps(a.ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return actions.Outcome{Message: name + " exists"}, nil
	}
	if !apierrors.IsNotFound(err) {
		return actions.Outcome{}, err
	}
	if name == a.killIn {
		a.kill() // the process dies after deciding, before creating
		return actions.Outcome{}, fmt.Errorf("killed: %w", context.Canceled)
	}
	_, err = a.cs.CoreV1().ConfigMaps(a.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return actions.Outcome{Changed: err == nil, Message: "created " + name}, err
}

func createNamespace(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}
