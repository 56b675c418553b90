package project

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Find looks for the project file in dir and its parents, up to the root of the git
// repository that holds dir (or the filesystem root outside one): a project file
// belongs to the repository of its runbooks, and one in a parent repository or the
// home directory must not silently apply. It returns "" when there is none.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", FileName, err)
	}
	for {
		candidate := filepath.Join(abs, FileName)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("find %s: %w", FileName, err)
		}
		if _, err := os.Stat(filepath.Join(abs, ".git")); err == nil {
			return "", nil // the repository's root: stop here
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return "", nil
		}
		abs = parent
	}
}
