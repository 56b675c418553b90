// Package provenance tells where a runbook came from: the git commit of the
// repository that holds it, and whether the runbook or its values differ from that
// commit. Recorded with each run so an audit can tie a change to reviewed code.
package provenance

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Info is a runbook's provenance.
type Info struct {
	File   string // the runbook, relative to the repository's root
	Commit string // HEAD
	Dirty  bool   // an input is modified, untracked, or outside the repository
}

// timeout bounds the git calls: provenance is worth a little time, never a hang.
const timeout = 5 * time.Second

// Git describes the repository holding runbook. inputs are the other files the run
// reads (values, project file): the run is reproducible from the commit only if
// none of them is dirty. It reports false when there is no answer: no git binary (a
// scratch container image), not in a repository, no commit yet, or git refusing
// the directory; a run never fails for lack of provenance.
func Git(ctx context.Context, runbook string, inputs ...string) (Info, bool) {
	if _, err := exec.LookPath("git"); err != nil {
		return Info{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	abs, err := canonical(runbook)
	if err != nil {
		return Info{}, false
	}
	out, err := git(ctx, filepath.Dir(abs), "rev-parse", "--show-toplevel", "HEAD")
	lines := strings.Fields(out)
	if err != nil || len(lines) != 2 {
		return Info{}, false
	}
	top, commit := lines[0], lines[1]
	info := Info{Commit: commit}
	rel, inside := within(top, abs)
	if !inside {
		return Info{}, false
	}
	info.File = rel
	paths := []string{rel}
	for _, in := range inputs {
		a, err := canonical(in)
		if err != nil {
			info.Dirty = true // cannot tell: say so rather than vouch for it
			continue
		}
		r, inside := within(top, a)
		if !inside {
			info.Dirty = true // a file the commit does not hold
			continue
		}
		paths = append(paths, r)
	}
	status, err := git(ctx, top, append([]string{"status", "--porcelain", "--untracked-files=all", "--"}, paths...)...)
	if err != nil || strings.TrimSpace(status) != "" {
		info.Dirty = true
	}
	return info, true
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	return string(out), err
}

// canonical resolves symlinks so paths compare with git's toplevel (which is
// resolved too, e.g. /tmp → /private/tmp on macOS).
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// within returns path relative to dir (slash-separated, as git prints paths), and
// whether it lies inside dir.
func within(dir, path string) (string, bool) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}
