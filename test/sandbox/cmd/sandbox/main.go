// Command sandbox keeps a local test cluster running in the background for the demo
// and for manual work (hack/sandbox.sh, make sandbox-up / sandbox-down):
//
//	sandbox up     [-dir .sandbox] [-tools DIR] [-scenario NAME|FILE] [-flavour crd|apiserver|operator]
//	sandbox down   [-dir .sandbox]
//	sandbox status [-dir .sandbox]
//	sandbox run    ...   (the daemon itself; `up` starts it detached)
//
// The cluster's state lives in the directory: kubeconfig (admin), pid, status.json,
// logs/ (one file per component, sandbox.log for the daemon).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runbookdev/runbook/test/sandbox"
)

type config struct {
	dir      string
	tools    string
	scenario string
	flavour  string
	timeout  time.Duration
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: sandbox up|down|status|run [flags]")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("sandbox "+cmd, flag.ContinueOnError)
	var c config
	fs.StringVar(&c.dir, "dir", ".sandbox", "state directory (kubeconfig, pid, logs/)")
	fs.StringVar(&c.tools, "tools", os.Getenv("RUNBOOK_TOOLS_DIR"), "directory of the control-plane binaries (bash hack/build-tools.sh --print-dir)")
	fs.StringVar(&c.scenario, "scenario", "default", "scenario name (test/scenarios) or file")
	fs.StringVar(&c.flavour, "flavour", "crd", "Calico install flavour ("+strings.Join(sandbox.Flavours(), ", ")+")")
	fs.DurationVar(&c.timeout, "timeout", 3*time.Minute, "how long up waits for the cluster at least (big scenarios get longer), and down for the shutdown")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return err
	}
	c.dir = dir

	ctx := context.Background()
	switch cmd {
	case "up":
		return up(ctx, c)
	case "down":
		return down(c)
	case "status":
		return status(c)
	case "run":
		return daemon(c)
	default:
		return fmt.Errorf("unknown command %q (up, down, status, run)", cmd)
	}
}
