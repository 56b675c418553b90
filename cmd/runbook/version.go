package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped at build time by hack/release.sh and hack/image/build.sh (hack/stamp.sh
// holds the flags): -ldflags "-X main.version=v1.2.3 -X main.commit=<sha>
// -X main.buildTime=2026-01-02T03:04:05Z". The build time is the commit's time
// (SOURCE_DATE_EPOCH), not the wall clock, so two builds of a commit are the same
// bytes. A plain `go build` leaves them empty and the commit comes from Go's VCS
// stamp, when the build had one.
var (
	version   = "dev"
	commit    = ""
	buildTime = ""
)

type versionInfo struct {
	Version   string `json:"version" yaml:"version"`
	Commit    string `json:"commit,omitempty" yaml:"commit,omitempty"`
	BuildTime string `json:"buildTime,omitempty" yaml:"buildTime,omitempty"`
	GoVersion string `json:"goVersion" yaml:"goVersion"`
	Platform  string `json:"platform" yaml:"platform"`
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			v := currentVersion()
			if g.output != "text" {
				return writeStructured(g.out, g.output, v)
			}
			built := ""
			if v.BuildTime != "" {
				built = ", built " + v.BuildTime
			}
			fprintf(g.out, "runbook %s (commit %s%s, %s, %s)\n", v.Version, orNone(v.Commit), built, v.GoVersion, v.Platform)
			return nil
		},
	}
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, BuildTime: buildTime,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && v.Commit == "":
				v.Commit = s.Value
			case s.Key == "vcs.time" && v.BuildTime == "":
				v.BuildTime = s.Value
			}
		}
	}
	return v
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
