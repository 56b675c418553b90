package engine

import (
	"fmt"
	"os"
)

// WritePrivateFile writes b to path readable by its owner only (0600), as the
// journal is: plans, reports and archived runs hold the params, digests and what
// the run saw of the cluster. An existing file is truncated and made 0600 too
// (os.WriteFile's mode applies only to a file it creates); a path that is not a
// regular file, such as /dev/stdout, keeps its mode.
func WritePrivateFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return fmt.Errorf("make %s private: %w", path, err)
		}
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
