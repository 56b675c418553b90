package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// files holds the scenarios shipped with the project, so a test binary or the
// sandbox command finds them wherever it runs.
//
//go:embed *.yaml
var files embed.FS

// Default is the name of the scenario used when none is given.
const Default = "default"

// Names lists the shipped scenarios.
func Names() []string {
	entries, _ := fs.Glob(files, "*.yaml") // the pattern is valid, so Glob cannot fail
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e, ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Load returns a shipped scenario by name ("default") or, when nameOrPath looks
// like a file (contains a slash or ends in .yaml/.yml), the scenario in that file.
func Load(nameOrPath string) (*Scenario, error) {
	if nameOrPath == "" {
		nameOrPath = Default
	}
	var (
		data []byte
		err  error
	)
	if isPath(nameOrPath) {
		data, err = os.ReadFile(nameOrPath)
	} else {
		data, err = files.ReadFile(nameOrPath + ".yaml")
		if err != nil {
			return nil, fmt.Errorf("unknown scenario %q (shipped: %s; or give a file path)", nameOrPath, strings.Join(Names(), ", "))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", nameOrPath, err)
	}
	return s, nil
}

func isPath(s string) bool {
	ext := path.Ext(s)
	return strings.ContainsRune(s, '/') || ext == ".yaml" || ext == ".yml"
}
