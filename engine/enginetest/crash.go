package enginetest

import (
	"context"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/runbooks"
)

// CrashRunbook has a temporary object (cleanup) between two kept ones: a crash
// anywhere in it exercises resume, intents and cleanup after resume.
const CrashRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: crash}
steps:
  - {id: a, action: putConfigMap, with: {name: a}, rollback: auto}
  - {id: tmp, action: putConfigMap, with: {name: tmp, temporary: true}}
  - {id: b, action: putConfigMap, with: {name: b}, rollback: auto}
`

// Env is a fresh place for one crash trial: a namespace nobody else uses and an
// empty journal store.
type Env struct {
	Client    kubernetes.Interface
	Namespace string
	Store     engine.Store
}

// Trial runs src once in env; dead, when non-nil, is shared with a DyingStore.
func Trial(ctx context.Context, t testing.TB, env Env, src string, store engine.Store, dead *bool, log *[]string) (*engine.Report, error) {
	t.Helper()
	rb, err := runbooks.Parse("crash.yaml", []byte(src), Registry())
	if err != nil {
		t.Fatal(err)
	}
	params, err := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	act := &ConfigMapAction{Client: env.Client, Namespace: env.Namespace, Log: log, Cancel: cancel, Dead: dead}
	return engine.Run(ctx, engine.Options{Runbook: rb, Params: params, Store: store, Holder: "crash-test",
		Impls: map[string]actions.Impl{Decl.Name: act}})
}

// ConfigMaps lists the ConfigMap names of a namespace, sorted.
func ConfigMaps(ctx context.Context, t testing.TB, env Env) string {
	t.Helper()
	l, err := env.Client.CoreV1().ConfigMaps(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cm := range l.Items {
		if cm.Name != "kube-root-ca.crt" && !strings.HasPrefix(cm.Name, "runbook-") {
			names = append(names, cm.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// CrashAtEveryWrite kills a run of src after each of its journal writes (every step
// boundary and every intent recorded inside a step), resumes it in the same
// environment, and checks the end state equals an uninterrupted run's, with every
// object created exactly once. It returns the crashes injected and survived.
func CrashAtEveryWrite(ctx context.Context, t testing.TB, src string, wantCreates int, fresh func(t testing.TB) Env) (injected, survived int) {
	t.Helper()
	ref := fresh(t)
	counter := &DyingStore{Store: ref.Store, WritesLeft: -1, Dead: new(bool)}
	var log []string
	if _, err := Trial(ctx, t, ref, src, counter, nil, &log); err != nil {
		t.Fatal(err)
	}
	total := -counter.WritesLeft - 1
	want := ConfigMaps(ctx, t, ref)
	for k := 0; k < total; k++ {
		env := fresh(t)
		dead := false
		var log []string
		_, _ = Trial(ctx, t, env, src, &DyingStore{Store: env.Store, WritesLeft: k, Dead: &dead}, &dead, &log)
		injected++
		if _, err := Trial(ctx, t, env, src, env.Store, nil, &log); err != nil {
			t.Errorf("crash after write %d: resume failed: %v", k, err)
			continue
		}
		if got := ConfigMaps(ctx, t, env); got != want {
			t.Errorf("crash after write %d: end state %q, want %q", k, got, want)
			continue
		}
		creates := 0
		for _, l := range log {
			if strings.HasPrefix(l, "create ") {
				creates++
			}
		}
		if creates != wantCreates {
			t.Errorf("crash after write %d: %d creates, want %d (%v)", k, creates, wantCreates, log)
			continue
		}
		survived++
	}
	t.Logf("crashes injected: %d, survived: %d (journal writes per run: %d)", injected, survived, total)
	return injected, survived
}
