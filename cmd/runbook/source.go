package main

import (
	"context"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/provenance"
)

// sourceOf is the runbook's provenance for the journal and the report: the file, and
// the git commit when it is in a repository. The values files and the project file
// count for the dirty flag: a run is reproducible from a commit only if all its
// inputs are committed.
func sourceOf(ctx context.Context, runbookFile string, values []string, projectFile string) *engine.Source {
	inputs := append([]string(nil), values...)
	if projectFile != "" {
		inputs = append(inputs, projectFile)
	}
	info, ok := provenance.Git(ctx, runbookFile, inputs...)
	if !ok {
		return &engine.Source{File: runbookFile}
	}
	return &engine.Source{File: info.File, Commit: info.Commit, Dirty: info.Dirty}
}

// describeSource is the one-line form: file@commit, marked when dirty.
func describeSource(s *engine.Source) string {
	if s == nil {
		return "-"
	}
	out := s.File
	if s.Commit != "" {
		out += "@" + shortCommit(s.Commit)
	}
	if s.Dirty {
		out += " (uncommitted changes)"
	}
	return out
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// shortDigest keeps "sha256:" and 12 hex digits: enough to compare by eye.
func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
