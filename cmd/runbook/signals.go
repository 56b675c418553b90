package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitOnSecondSignal is the exit status after a second SIGINT/SIGTERM: 128 + SIGINT,
// what a shell reports for a process killed by Ctrl-C.
const exitOnSecondSignal = 130

// interruptible returns a context cancelled by the first SIGINT or SIGTERM, so a
// run stops cleanly between operations with its journal written; a second signal
// exits at once (an operator who presses Ctrl-C twice means it). stop ends the
// handling.
func interruptible(errOut io.Writer) (ctx context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go handleSignals(sigs, cancel, os.Exit, errOut)
	return ctx, func() { signal.Stop(sigs); cancel() }
}

// handleSignals cancels on the first signal and exits on the second.
func handleSignals(sigs <-chan os.Signal, cancel context.CancelFunc, exit func(int), errOut io.Writer) {
	s, ok := <-sigs
	if !ok {
		return
	}
	fmt.Fprintf(errOut, "\n%v: stopping cleanly at the next safe point (journal written); send it again to exit at once\n", s)
	cancel()
	if s, ok = <-sigs; !ok {
		return
	}
	fmt.Fprintf(errOut, "%v again: exiting now; apply again to resume from the journal\n", s)
	exit(exitOnSecondSignal)
}
