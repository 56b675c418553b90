package project

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Find looks for the project file from dir upwards and returns its path, or ""
// when there is none. How far it looks, and which files it reads, decide whose
// settings (kube context, namespace, values) a command applies:
//
//   - Inside a git repository: dir and its parents up to the repository's root. A
//     project file belongs to the repository of its runbooks; one in a parent
//     repository or the home directory must not silently apply.
//   - Outside one, under the home directory: up to the home directory.
//   - Outside both (a runbook in /tmp/x or /srv): dir only. Shared parents such as
//     /tmp or / hold files anyone may have put there.
//
// A file found is refused (an error naming it; --project uses it anyway) when it
// is owned by someone other than the user, root, or the owner of dir (whoever
// owns the runbooks' directory owns their project file: a CI job running as root
// in a checkout owned by the runner's user), when every user may write it, or
// when its directory lets every user replace it (world-writable, no sticky bit).
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", FileName, err)
	}
	for _, d := range searchDirs(abs) {
		candidate := filepath.Join(d, FileName)
		if _, err := os.Lstat(candidate); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return "", fmt.Errorf("find %s: %w", FileName, err)
		}
		if err := trusted(candidate, abs); err != nil {
			return "", fmt.Errorf("refusing project file %s: %w; pass --project %s to use it anyway", candidate, err, candidate)
		}
		return candidate, nil
	}
	return "", nil
}

// searchDirs are the directories Find looks in, nearest first (see Find).
func searchDirs(abs string) []string {
	var chain []string
	for d := abs; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return chain // the repository's root
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return chain[:1]
	}
	home = filepath.Clean(home)
	for i, d := range chain {
		if d == home {
			return chain[:i+1]
		}
	}
	return chain[:1] // not under the home directory
}

// currentUID and ownerOf are variables so that a test can make files someone
// else's without being root.
var (
	currentUID = os.Geteuid
	ownerOf    = fileOwner
)

// trusted refuses a project file that someone other than the user could have
// written (see Find): the file tells runbook which cluster to change and how.
// start is the directory the lookup started from.
func trusted(path, start string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		mode := fi.Mode()
		switch {
		case p == path && mode.Perm()&0o002 != 0:
			return fmt.Errorf("every user may write it (mode %04o)", mode.Perm())
		case p != path && mode.Perm()&0o002 != 0 && mode&os.ModeSticky == 0:
			return fmt.Errorf("every user may write its directory %s (mode %04o, no sticky bit) and replace it", p, mode.Perm())
		}
	}
	owners := map[int]bool{0: true, currentUID(): true}
	if fi, err := os.Stat(start); err == nil {
		if uid, ok := ownerOf(fi); ok {
			owners[uid] = true
		}
	}
	// The link and what it points to must both be trusted.
	for _, stat := range []func(string) (os.FileInfo, error){os.Lstat, os.Stat} {
		fi, err := stat(path)
		if err != nil {
			return err
		}
		if uid, ok := ownerOf(fi); ok && !owners[uid] {
			return fmt.Errorf("owned by uid %d, not by you (uid %d), root or the owner of %s", uid, currentUID(), start)
		}
	}
	return nil
}
