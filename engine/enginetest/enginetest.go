// Package enginetest has the engine's test action (it converges ConfigMaps) and a
// crash injector, shared by the engine's fast tests (fake clientset) and the e2e tests
// against the sandbox's real kube-apiserver.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/value"
)

// ConfigMapAction is the engine tests' action: it converges a ConfigMap's data, records
// what it created, and its inverse deletes only what this run created.
type ConfigMapAction struct {
	Client    kubernetes.Interface
	Namespace string
	Log       *[]string // call log, to prove what ran and in which order
	FailOn    string    // name whose Apply (and Plan) fails
	Cancel    context.CancelFunc
	StopOn    string // name whose Apply simulates a kill: it cancels and returns
	Dead      *bool  // set once the simulated process died: it does nothing more
}

func (a *ConfigMapAction) isDead() bool { return a.Dead != nil && *a.Dead }

// Decl declares the action as "putConfigMap".
var Decl = &decl.Action{Name: "putConfigMap", Summary: "test", Inverse: "delete if created",
	Params: []decl.Param{
		{Name: "name", Spec: value.Spec{Type: value.String, Required: true}},
		{Name: "value", Spec: value.Spec{Type: value.String, Default: "v"}},
		{Name: "temporary", Spec: value.Spec{Type: value.Bool, Default: false}},
	},
	Outputs: []decl.Output{{Name: "created", Type: value.Bool}, {Name: "length", Type: value.Int}, {Name: "age", Type: value.Duration}}}

func (a *ConfigMapAction) Apply(ctx context.Context, c *actions.Call) (actions.Outcome, error) {
	name := c.With["name"].(string)
	if a.isDead() {
		return actions.Outcome{}, errors.New("process is dead")
	}
	*a.Log = append(*a.Log, "apply "+name)
	if name == a.StopOn {
		a.Cancel()
		return actions.Outcome{}, ctx.Err()
	}
	if name == a.FailOn {
		return actions.Outcome{}, fmt.Errorf("injected failure on %s", name)
	}
	want := map[string]string{"v": c.With["value"].(string)}
	cm, err := a.Client.CoreV1().ConfigMaps(a.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if err := c.Recorder.Intent(ctx, "create", name); err != nil {
			return actions.Outcome{}, err
		}
		_, err = a.Client.CoreV1().ConfigMaps(a.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace}, Data: want}, metav1.CreateOptions{})
		if err != nil {
			return actions.Outcome{}, err
		}
		*a.Log = append(*a.Log, "create "+name)
		if err := c.Recorder.Created(ctx, actions.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: name}); err != nil {
			return actions.Outcome{}, err
		}
		return actions.Outcome{Changed: true, Outputs: map[string]any{"created": true, "length": len(want["v"]), "age": time.Minute}, Message: "created " + name}, nil
	}
	if err != nil {
		return actions.Outcome{}, err
	}
	if reflect.DeepEqual(cm.Data, want) {
		return actions.Outcome{Outputs: map[string]any{"created": false, "length": len(want["v"]), "age": time.Minute}, Message: name + " already as wanted"}, nil
	}
	cm.Data = want
	if _, err := a.Client.CoreV1().ConfigMaps(a.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return actions.Outcome{}, err
	}
	return actions.Outcome{Changed: true, Outputs: map[string]any{"created": false}, Message: "updated " + name}, nil
}

func (a *ConfigMapAction) Invert(ctx context.Context, c *actions.Call) (actions.InverseOutcome, error) {
	name := c.With["name"].(string)
	if a.isDead() {
		return actions.InverseOutcome{}, errors.New("process is dead")
	}
	*a.Log = append(*a.Log, "invert "+name)
	if name == "undeletable" {
		return actions.InverseOutcome{}, errors.New("injected inverse failure")
	}
	if len(c.Prior.Created) == 0 {
		return actions.InverseOutcome{Kept: name + " existed before this run"}, nil
	}
	err := a.Client.CoreV1().ConfigMaps(a.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return actions.InverseOutcome{}, err
	}
	return actions.InverseOutcome{Changed: true, Message: "deleted " + name}, nil
}

func (a *ConfigMapAction) Cleanup(ctx context.Context, c *actions.Call) error {
	if !c.With["temporary"].(bool) || a.isDead() {
		return nil
	}
	name := c.With["name"].(string)
	*a.Log = append(*a.Log, "cleanup "+name)
	err := a.Client.CoreV1().ConfigMaps(a.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Registry holds the test action, pause, and the built-in guard functions.
func Registry() *decl.Registry {
	reg := decl.NewRegistry()
	reg.Add(Decl)
	pause, _ := actions.Default.Action("pause")
	reg.Add(pause)
	for _, f := range actions.Default.Funcs() {
		reg.AddFunc(f)
	}
	return reg
}

func (a *ConfigMapAction) Plan(ctx context.Context, c *actions.Call) (actions.Planned, error) {
	name := c.With["name"].(string)
	if name == a.FailOn {
		return actions.Planned{}, fmt.Errorf("injected plan refusal on %s", name)
	}
	cm, err := a.Client.CoreV1().ConfigMaps(a.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return actions.Planned{Change: plans.Create, Details: []string{"create " + name}, Facts: []string{"configmap " + name + ": absent"}}, nil
	}
	if err != nil {
		return actions.Planned{}, err
	}
	fact := "configmap " + name + ": v=" + cm.Data["v"]
	if cm.Data["v"] == c.With["value"] {
		return actions.Planned{Change: plans.None, Facts: []string{fact}}, nil
	}
	return actions.Planned{Change: plans.Update, Facts: []string{fact}}, nil
}

// DyingStore simulates kill -9 after a number of journal writes: from then on
// nothing is written and the process's actions stop (see putConfigMap.dead).
type DyingStore struct {
	engine.Store
	WritesLeft int // writes to let through; negative: all (and count them down)
	Dead       *bool
}

func (d *DyingStore) Save(ctx context.Context, j *engine.Journal, rev string) (string, error) {
	if *d.Dead {
		return "", errors.New("process is dead")
	}
	if d.WritesLeft == 0 {
		*d.Dead = true
		return "", errors.New("process is dead")
	}
	d.WritesLeft--
	return d.Store.Save(ctx, j, rev)
}
