// Command calico-allocate-tunnel-addrs is calico-node's tunnel-address allocator
// and nothing else: exactly what `calico-node -allocate-tunnel-addrs` (the runit
// service allocate-tunnel-addrs) and `calico-node -allocate-tunnel-addrs
// -allocate-tunnel-addrs-run-once` (rc.local, before any service starts) do, built
// from the real package of the pinned Calico release (v3.28.5):
//
//	node/cmd/calico-node/main.go:54-55        the two flags
//	node/cmd/calico-node/main.go:84-90,157-163 stdout logging, file:line hook,
//	                                          formatter, allocateip.Run(nil | chan)
//	node/filesystem/etc/rc.local:24           the run-once call at container start
//	node/filesystem/etc/service/available/allocate-tunnel-addrs/run  the daemon
//
// The rest of calico-node (felix, BIRD, confd, start-up's address autodetection)
// needs a real host network and is not part of it. Environment as in calico-node:
// NODENAME (required; allocateip panics without it), DATASTORE_TYPE=kubernetes,
// KUBECONFIG; FELIX_* only for WireGuard settings.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/projectcalico/calico/libcalico-go/lib/logutils"
	"github.com/projectcalico/calico/node/pkg/allocateip"
	"github.com/sirupsen/logrus"
)

func main() {
	flags := flag.NewFlagSet("calico-allocate-tunnel-addrs", flag.ContinueOnError)
	runOnce := flags.Bool("allocate-tunnel-addrs-run-once", false, "Run allocate-tunnel-addrs in oneshot mode")
	// Accepted so that the command line reads like calico-node's.
	_ = flags.Bool("allocate-tunnel-addrs", true, "Configure tunnel addresses for this node (always)")
	if err := flags.Parse(os.Args[1:]); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	logrus.SetOutput(os.Stdout)
	logrus.AddHook(&logutils.ContextHook{})
	logrus.SetFormatter(&logutils.Formatter{Component: "tunnel-ip-allocator"})
	if *runOnce {
		allocateip.Run(nil)
		return
	}
	// Never closed: the daemon runs until it is killed or exits on an error
	// (allocateip logs Fatal), and its supervisor restarts it as runit would.
	allocateip.Run(make(chan struct{}))
}
