package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Store keeps run journals. Save is a compare-and-swap on rev (the revision Load or
// the previous Save returned; "" for a journal that does not exist yet), so two
// writers can never silently overwrite each other.
type Store interface {
	Load(ctx context.Context) (j *Journal, rev string, err error) // nil journal when none
	Save(ctx context.Context, j *Journal, rev string) (newRev string, err error)
	// Archive keeps a copy of a finished run for `runbook history`.
	Archive(ctx context.Context, j *Journal) error
	// History lists archived runs, newest first.
	History(ctx context.Context) ([]*Journal, error)
	// List returns every journal kept where this store keeps its own, whatever
	// runbook wrote it: the current ones, or (archived) the archived runs — what
	// status and history show across runbooks. A journal that cannot be read is
	// left out and reported in skipped, so one bad object does not hide the rest.
	List(ctx context.Context, archived bool) (js []*Journal, skipped []error, err error)
	Describe() string
}

// ErrConflict is returned by Save when the journal changed since rev.
var ErrConflict = errors.New("run journal was changed by someone else")

// FileStore keeps the journal in a local file (--state).
type FileStore struct{ Path string }

func (s *FileStore) Describe() string { return "file " + s.Path }

func (s *FileStore) Load(context.Context) (*Journal, string, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read journal %s: %w", s.Path, err)
	}
	j, err := Decode(b)
	if err != nil {
		return nil, "", fmt.Errorf("journal %s: %w", s.Path, err)
	}
	return j, fileRev(b), nil
}

func (s *FileStore) Save(_ context.Context, j *Journal, rev string) (string, error) {
	b, err := Encode(j)
	if err != nil {
		return "", err
	}
	cur, err := os.ReadFile(s.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if rev != "" {
			return "", fmt.Errorf("%w: %s disappeared", ErrConflict, s.Path)
		}
	case err != nil:
		return "", fmt.Errorf("read journal %s: %w", s.Path, err)
	case fileRev(cur) != rev:
		return "", fmt.Errorf("%w: %s", ErrConflict, s.Path)
	}
	// Write a temporary file and rename it over the journal: a crash mid-write leaves
	// the old journal whole, never half of the new one.
	tmp, err := os.CreateTemp(filepath.Dir(s.Path), ".journal-*")
	if err != nil {
		return "", fmt.Errorf("write journal: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write journal: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write journal: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write journal: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.Path); err != nil {
		return "", fmt.Errorf("write journal: %w", err)
	}
	return fileRev(b), nil
}

func (s *FileStore) historyDir() string { return s.Path + ".history" }

func (s *FileStore) Archive(_ context.Context, j *Journal) error {
	if err := checkRunID(j.RunID); err != nil {
		return err
	}
	b, err := Encode(j)
	if err != nil {
		return err
	}
	// Private like the journal: an archived run holds the same params and outputs.
	if err := os.MkdirAll(s.historyDir(), 0o700); err != nil {
		return fmt.Errorf("archive run: %w", err)
	}
	if err := WritePrivateFile(filepath.Join(s.historyDir(), j.RunID+".json"), b); err != nil {
		return fmt.Errorf("archive run: %w", err)
	}
	return nil
}

// runIDRe is the format newRunID makes (UTC time and 3 random bytes). A run id
// becomes a file name and a ConfigMap name, so nothing else is archived: a run id
// of "../x" from a hand-edited journal would write outside the history.
var runIDRe = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$`)

func checkRunID(id string) error {
	if !runIDRe.MatchString(id) {
		return fmt.Errorf("archive run: run id %q is not of the form 20060102-150405-a1b2c3 (was the journal edited?)", id)
	}
	return nil
}

func (s *FileStore) History(context.Context) ([]*Journal, error) {
	files, err := filepath.Glob(filepath.Join(s.historyDir(), "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Journal
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read archived run: %w", err)
		}
		j, err := Decode(b)
		if err != nil {
			return nil, fmt.Errorf("archived run %s: %w", f, err)
		}
		out = append(out, j)
	}
	sortNewestFirst(out)
	return out, nil
}

// List is the one journal of the file, or its archived runs.
func (s *FileStore) List(ctx context.Context, archived bool) ([]*Journal, []error, error) {
	if archived {
		js, err := s.History(ctx)
		return js, nil, err
	}
	j, _, err := s.Load(ctx)
	if j == nil || err != nil {
		return nil, nil, err
	}
	return []*Journal{j}, nil, nil
}

func sortNewestFirst(js []*Journal) {
	sort.Slice(js, func(a, b int) bool { return js[a].StartedAt.After(js[b].StartedAt) })
}

func fileRev(b []byte) string {
	sum := sha256.Sum256(bytes.TrimSpace(b))
	return hex.EncodeToString(sum[:8])
}

// ConfigMapStore keeps the journal in a ConfigMap; resourceVersion preconditions make
// every Save a compare-and-swap on the API server.
type ConfigMapStore struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
}

const journalKey = "journal.json"

func (s *ConfigMapStore) Describe() string {
	return fmt.Sprintf("configmap %s/%s", s.Namespace, s.Name)
}

// The labels every journal ConfigMap carries; archives add archivedLabel.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	runbookLabel   = "runbook.dev/runbook"
	archivedLabel  = "runbook.dev/archived-from"
)

// journalLabels are the labels of runbook's current journal (archivedFrom "") or
// of an archived run of the journal archivedFrom.
func journalLabels(runbook, archivedFrom string) map[string]string {
	l := map[string]string{managedByLabel: "runbook", runbookLabel: labelValue(runbook)}
	if archivedFrom != "" {
		l[archivedLabel] = labelValue(archivedFrom)
	}
	return l
}

// labelValue fits v into a label value's 63 characters. A value that fits is
// kept as it is, so archives labelled before stay found; a longer one, such as
// "runbook-" and a 63-character runbook name, keeps its first 52 characters for
// people and ends in 10 hex digits of its SHA-256, so two long names that share a
// prefix keep apart. The journal's own ConfigMap name may be longer (253).
func labelValue(v string) string {
	const max = 63
	if len(v) <= max {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	// Trimmed so that the cut and the hash join with one '-'.
	return strings.TrimRight(v[:max-11], "-_.") + "-" + hex.EncodeToString(sum[:])[:10]
}

func (s *ConfigMapStore) Archive(ctx context.Context, j *Journal) error {
	if err := checkRunID(j.RunID); err != nil {
		return err
	}
	b, err := Encode(j)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-" + j.RunID, Namespace: s.Namespace,
			Labels: journalLabels(j.Runbook, s.Name)},
		Data: map[string]string{journalKey: string(b)},
	}
	_, err = s.Client.CoreV1().ConfigMaps(s.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = s.Client.CoreV1().ConfigMaps(s.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("archive run %s: %w", j.RunID, err)
	}
	return nil
}

func (s *ConfigMapStore) History(ctx context.Context) ([]*Journal, error) {
	l, err := s.Client.CoreV1().ConfigMaps(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: archivedLabel + "=" + labelValue(s.Name)})
	if err != nil {
		return nil, fmt.Errorf("list archived runs: %w", err)
	}
	var out []*Journal
	for _, cm := range l.Items {
		j, err := Decode([]byte(cm.Data[journalKey]))
		if err != nil {
			return nil, fmt.Errorf("archived run %s: %w", cm.Name, err)
		}
		out = append(out, j)
	}
	sortNewestFirst(out)
	return out, nil
}

// List reads every journal ConfigMap of the namespace (the store's Name does not
// matter): all runbooks' current journals, or all archived runs.
func (s *ConfigMapStore) List(ctx context.Context, archived bool) ([]*Journal, []error, error) {
	sel := managedByLabel + "=runbook," + runbookLabel
	l, err := s.Client.CoreV1().ConfigMaps(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, nil, fmt.Errorf("list journals in %s: %w", s.Namespace, err)
	}
	var out []*Journal
	var skipped []error
	for _, cm := range l.Items {
		if _, isArchive := cm.Labels[archivedLabel]; isArchive != archived {
			continue
		}
		j, err := Decode([]byte(cm.Data[journalKey]))
		if err != nil {
			skipped = append(skipped, fmt.Errorf("configmap %s/%s: %w", cm.Namespace, cm.Name, err))
			continue
		}
		out = append(out, j)
	}
	return out, skipped, nil
}

func (s *ConfigMapStore) Load(ctx context.Context) (*Journal, string, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read journal %s: %w", s.Describe(), err)
	}
	data, ok := cm.Data[journalKey]
	if !ok {
		return nil, "", fmt.Errorf("journal %s: %w: key %s missing", s.Describe(), ErrCorrupt, journalKey)
	}
	j, err := Decode([]byte(data))
	if err != nil {
		return nil, "", fmt.Errorf("journal %s: %w", s.Describe(), err)
	}
	return j, cm.ResourceVersion, nil
}

func (s *ConfigMapStore) Save(ctx context.Context, j *Journal, rev string) (string, error) {
	b, err := Encode(j)
	if err != nil {
		return "", err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, ResourceVersion: rev,
			Labels: journalLabels(j.Runbook, "")},
		Data: map[string]string{journalKey: string(b)},
	}
	var out *corev1.ConfigMap
	if rev == "" {
		out, err = s.Client.CoreV1().ConfigMaps(s.Namespace).Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("%w: %s was created by someone else", ErrConflict, s.Describe())
		}
	} else {
		out, err = s.Client.CoreV1().ConfigMaps(s.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return "", fmt.Errorf("%w: %s", ErrConflict, s.Describe())
		}
	}
	if err != nil {
		return "", fmt.Errorf("write journal %s: %w", s.Describe(), err)
	}
	return out.ResourceVersion, nil
}
