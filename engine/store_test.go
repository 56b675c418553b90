package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
)

// validatingClientset is a fake clientset that refuses what the apiserver refuses
// in ConfigMap metadata (names, label keys and values) and in list label
// selectors (the fake alone stores anything, which hid issue #15 item 11), and
// keeps resourceVersions, which the journal's compare-and-swap needs.
func validatingClientset() *fake.Clientset {
	cs := fake.NewClientset()
	rv := 0
	gvr := corev1.SchemeGroupVersion.WithResource("configmaps")
	cs.PrependReactor("*", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		var obj runtime.Object
		// By verb: CreateAction and UpdateAction have the same methods.
		switch a.GetVerb() {
		case "create":
			obj = a.(k8stesting.CreateAction).GetObject()
		case "update":
			obj = a.(k8stesting.UpdateAction).GetObject()
			cm := obj.(*corev1.ConfigMap)
			cur, err := cs.Tracker().Get(gvr, cm.Namespace, cm.Name)
			if err != nil {
				return true, nil, err
			}
			if v := cm.ResourceVersion; v != "" && v != cur.(*corev1.ConfigMap).ResourceVersion {
				return true, nil, apierrors.NewConflict(gvr.GroupResource(), cm.Name, errors.New("resourceVersion changed"))
			}
		case "list":
			if sel := a.(k8stesting.ListAction).GetListRestrictions().Labels; sel != nil {
				if _, err := labels.Parse(sel.String()); err != nil {
					return true, nil, apierrors.NewBadRequest(err.Error())
				}
			}
			return false, nil, nil
		default:
			return false, nil, nil
		}
		cm := obj.(*corev1.ConfigMap)
		if errs := apivalidation.ValidateObjectMeta(&cm.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata")); len(errs) > 0 {
			return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, cm.Name, errs)
		}
		rv++
		cm.ResourceVersion = strconv.Itoa(rv)
		return false, nil, nil
	})
	return cs
}

// TestLongRunbookNamesArchive: every valid runbook name works for every run, not
// only the first: a 63-character name made the archive's label value 71
// characters ("runbook-" + name), which the apiserver refuses, so each run after
// the first failed archiving the one before. Two long names that differ only
// past the label's cut keep separate histories.
func TestLongRunbookNamesArchive(t *testing.T) {
	long := strings.Repeat("a", 50) + "-migrate-1234" // 63 characters
	twin := strings.Repeat("a", 50) + "-migrate-5678"
	if len(long) != 63 {
		t.Fatalf("name has %d characters", len(long))
	}
	ctx := context.Background()
	cs := validatingClientset()
	store := func(name string) *engine.ConfigMapStore {
		return &engine.ConfigMapStore{Client: cs, Namespace: "runbook-system", Name: "runbook-" + name}
	}
	f := newFixture(t)
	runs := map[string][]string{}
	for i := 0; i < 3; i++ {
		for _, name := range []string{long, twin} {
			src := strings.Replace(threeSteps, "metadata: {name: three}", "metadata: {name: "+name+"}", 1)
			rep, err := f.run(src, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Store = store(name) })
			if err != nil || rep.Status != engine.StatusDone {
				t.Fatalf("run %d of %s: %v (%+v)", i+1, name, err, rep)
			}
			runs[name] = append(runs[name], rep.RunID)
		}
	}
	for _, name := range []string{long, twin} {
		hist, err := store(name).History(ctx)
		if err != nil {
			t.Fatalf("history of %s: %v", name, err)
		}
		var got []string
		for _, j := range hist {
			if j.Runbook != name {
				t.Errorf("history of %s holds a run of %s", name, j.Runbook)
			}
			got = append(got, j.RunID)
		}
		if len(got) != 3 {
			t.Errorf("history of %s: %v, want its 3 runs %v", name, got, runs[name])
		}
	}
	// Each label value fits and says which runbook it belongs to.
	l, err := cs.CoreV1().ConfigMaps("runbook-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range l.Items {
		if v := cm.Labels["runbook.dev/archived-from"]; v != "" && (len(v) > 63 || !strings.HasPrefix(v, "runbook-"+strings.Repeat("a", 40))) {
			t.Errorf("configmap %s: archived-from %q", cm.Name, v)
		}
	}
}

// TestFileStoreArchiveRefusesForeignRunIDs: a run id is written into a file name,
// so anything but the run-id format (a "../" above all) is refused, nothing written.
func TestFileStoreArchiveRefusesForeignRunIDs(t *testing.T) {
	dir := t.TempDir()
	s := &engine.FileStore{Path: filepath.Join(dir, "state", "journal.json")}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../../escaped", "../x", "a/b", "", "20260314-220000-a1b2c3/../../x", "20260314-220000-A1B2C3"} {
		err := s.Archive(context.Background(), &engine.Journal{RunID: id, Status: engine.StatusDone})
		if err == nil || !strings.Contains(err.Error(), "run id") {
			t.Errorf("Archive(%q) = %v, want a refusal naming the run id", id, err)
		}
	}
	cms := &engine.ConfigMapStore{Client: fake.NewClientset(), Namespace: "ns", Name: "runbook-x"}
	if err := cms.Archive(context.Background(), &engine.Journal{RunID: "../x"}); err == nil {
		t.Error("ConfigMapStore.Archive accepted run id ../x")
	}
	var found []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, _ error) error {
		if info != nil && !info.IsDir() {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 0 {
		t.Errorf("files written: %v", found)
	}
	if err := s.Archive(context.Background(), &engine.Journal{RunID: "20260314-220000-a1b2c3", Status: engine.StatusDone}); err != nil {
		t.Errorf("a run id of the format is archived: %v", err)
	}
}

// TestWrittenFilesArePrivate: the archive, a saved plan and a report hold params,
// digests and cluster facts, like the journal (0600): each is written 0600, and
// an existing file written before with 0644 is made 0600 too.
func TestWrittenFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	s := &engine.FileStore{Path: filepath.Join(dir, "journal.json")}
	j := &engine.Journal{RunID: "20260314-220000-a1b2c3", Status: engine.StatusDone}
	if _, err := s.Save(context.Background(), j, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Archive(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := engine.SavePlan(plan, &engine.Plan{Format: engine.PlanFormat}); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.json")
	if err := engine.WritePrivateFile(report, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.Path, filepath.Join(dir, "journal.json.history", j.RunID+".json"), plan, report} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "journal.json.history")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("history directory: %v %v, want 0700", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(plan); strings.Contains(string(b), "old") {
		t.Error("the plan was not replaced")
	}
}

// TestNewerJournalVersion: a journal written by a newer runbook is not called
// corrupt (whose advice is to delete it): the error names both versions and
// says to use a newer runbook.
func TestNewerJournalVersion(t *testing.T) {
	b, err := engine.Encode(&engine.Journal{RunID: "20260314-220000-a1b2c3"})
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.Replace(string(b), `{"version":1,`, `{"version":2,`, 1)
	if newer == string(b) {
		t.Fatalf("no version field in %s", b)
	}
	_, err = engine.Decode([]byte(newer))
	if err == nil || errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("a newer journal: %v, want an error that is not ErrCorrupt", err)
	}
	for _, want := range []string{"version 2", "version 1", "newer runbook"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "delete it") || !strings.Contains(err.Error(), "do not delete") {
		t.Errorf("%q advises deleting the journal", err)
	}
	older := strings.Replace(string(b), `{"version":1,`, `{"version":0,`, 1)
	if _, err := engine.Decode([]byte(older)); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("version 0 (no version) is corrupt: %v", err)
	}
	// Through a store and the runner: the run refuses without the delete advice.
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.json")
	if err := os.WriteFile(path, []byte(newer), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.store = &engine.FileStore{Path: path}
	_, err = f.run(threeSteps, nil)
	if err == nil || strings.Contains(err.Error(), "delete it") || !strings.Contains(err.Error(), "newer runbook") {
		t.Errorf("apply over a newer journal: %v", err)
	}
}

// List reads every runbook's journals in the namespace, current or archived, and
// reports an unreadable one instead of failing or hiding the rest.
func TestStoresList(t *testing.T) {
	ctx := context.Background()
	cs := validatingClientset()
	store := func(name string) *engine.ConfigMapStore {
		return &engine.ConfigMapStore{Client: cs, Namespace: "runbook-system", Name: "runbook-" + name}
	}
	for i, name := range []string{"migrate", "rollout"} {
		j := &engine.Journal{RunID: "20261202-050000-00000" + strconv.Itoa(i), Runbook: name, Status: "done"}
		if _, err := store(name).Save(ctx, j, ""); err != nil {
			t.Fatal(err)
		}
		if err := store(name).Archive(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().ConfigMaps("runbook-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "runbook-broken", Namespace: "runbook-system", Labels: map[string]string{"app.kubernetes.io/managed-by": "runbook", "runbook.dev/runbook": "broken"}},
		Data:       map[string]string{"journal.json": "{not json"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	names := func(js []*engine.Journal) string {
		var out []string
		for _, j := range js {
			out = append(out, j.Runbook)
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		archived    bool
		want        string
		wantSkipped int
	}{
		{false, "migrate,rollout", 1},
		{true, "migrate,rollout", 0},
	} {
		js, skipped, err := store("any").List(ctx, tc.archived)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(js); got != tc.want || len(skipped) != tc.wantSkipped {
			t.Errorf("List(archived=%v) = %s, skipped %v; want %s and %d skipped", tc.archived, got, skipped, tc.want, tc.wantSkipped)
		}
		for _, e := range skipped {
			if !strings.Contains(e.Error(), "runbook-system/runbook-broken") {
				t.Errorf("skipped %q does not name the ConfigMap", e)
			}
		}
	}

	fs := &engine.FileStore{Path: filepath.Join(t.TempDir(), "journal.json")}
	if js, _, err := fs.List(ctx, false); err != nil || len(js) != 0 {
		t.Fatalf("empty file store lists %v, %v", js, err)
	}
	j := &engine.Journal{RunID: "20261202-050000-0000aa", Runbook: "migrate", Status: "done"}
	if _, err := fs.Save(ctx, j, ""); err != nil {
		t.Fatal(err)
	}
	if err := fs.Archive(ctx, j); err != nil {
		t.Fatal(err)
	}
	for _, archived := range []bool{false, true} {
		if js, _, err := fs.List(ctx, archived); err != nil || names(js) != "migrate" {
			t.Errorf("file store List(archived=%v) = %v, %v", archived, js, err)
		}
	}
}
