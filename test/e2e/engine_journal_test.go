package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
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

// TestCrashAtEveryJournalWriteOnRealAPIServer kills a run after each of its journal
// writes (every step boundary and every intent inside a step) and resumes it, with
// the journal in a ConfigMap of the real apiserver: same end state, nothing created
// twice, the temporary object cleaned up.
func TestCrashAtEveryJournalWriteOnRealAPIServer(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	n := 0
	injected, survived := enginetest.CrashAtEveryWrite(ctx, t, enginetest.CrashRunbook, 3, func(t testing.TB) enginetest.Env {
		n++
		ns := createNamespace(ctx, t, cs, fmt.Sprintf("crash-%d", n))
		return enginetest.Env{Client: cs, Namespace: ns, Store: &engine.ConfigMapStore{Client: cs, Namespace: ns, Name: "runbook-crash"}}
	})
	if injected < 8 || survived != injected {
		t.Fatalf("crashes injected %d, survived %d", injected, survived)
	}
}

func createNamespace(ctx context.Context, t testing.TB, cs kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}
