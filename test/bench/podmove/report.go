package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// printTable prints the results as a Markdown table with the lower bounds.
func printTable(w io.Writer, o options, rs []*result) {
	var floor time.Duration
	for _, r := range rs {
		if r.name == "parallel" {
			floor = r.wall
		}
	}
	fmt.Fprintf(w, "\n| contender | wall | vs (c) | Deployments below budget | fewest Ready | requests by contender | per pod | 429s | served by API server | per pod | peak RSS | CPU |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		vs := "—"
		if floor > 0 {
			vs = fmt.Sprintf("%.2f×", r.wall.Seconds()/floor.Seconds())
		}
		fmt.Fprintf(w, "| %s | %.1f s | %s | %d/%d | %d | %d | %.2f | %d | %.0f | %.1f | %d MiB | %.1f s |\n",
			label(r.name), r.wall.Seconds(), vs, r.below, r.deps, r.worstReady, r.child.Requests, float64(r.child.Requests)/float64(r.pods),
			r.child.Retries, r.served, r.served/float64(r.pods), r.peakRSS/1024, r.cpu.Seconds())
	}
	if o.rounds > 1 {
		fmt.Fprintf(w, "\nMedian of %d rounds (contenders taking turns, a fresh cluster each run); every run's wall time:\n", o.rounds)
		for _, r := range rs {
			var ws []string
			for _, d := range r.walls {
				ws = append(ws, fmt.Sprintf("%.1f s", d.Seconds()))
			}
			fmt.Fprintf(w, "- %s: %s\n", label(r.name), strings.Join(ws, ", "))
		}
	}
	waves := math.Ceil(float64(o.replicas) / float64(maxUnavailable(o.replicas)))
	fmt.Fprintf(w, "\nLower bounds: PDB waves × start delay = %.0f × %v = %v;", waves, o.startDelay, time.Duration(waves)*o.startDelay)
	for _, r := range rs {
		if r.ipamRate > 0 {
			fmt.Fprintf(w, " pods ÷ IPAM throughput = %d ÷ %.1f/s = %.1f s (measured during %s's bring-up: %d pods Ready in %.1f s).\n",
				o.pods, r.ipamRate, float64(o.pods)/r.ipamRate, label(r.name), o.pods, r.bringUp.Seconds())
			break
		}
	}
	fmt.Fprintln(w, "\nCNI operations (address assignments + releases) per 5 s of the migration:")
	for _, r := range rs {
		fmt.Fprintf(w, "- %s: %v\n", label(r.name), r.cniSeries)
	}
	fmt.Fprintln(w, "\nWhere a pod's time goes (watch-observed, during the migration):")
	for _, r := range rs {
		fmt.Fprintf(w, "- %s: %s\n", label(r.name), r.stages)
	}
	fmt.Fprintln(w, "\nRequests served by the API server during each migration, largest first:")
	for _, r := range rs {
		fmt.Fprintf(w, "- %s: %s\n", label(r.name), topRequests(r.servedTop, 8))
	}
}

// median is the run with the median wall time (the lower middle one of an even
// count), reported whole so that its numbers belong together; the other runs'
// wall times go along for the table.
func median(rs []*result) *result {
	s := append([]*result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].wall < s[j].wall })
	m := s[(len(s)-1)/2]
	for _, r := range rs {
		m.walls = append(m.walls, r.wall)
	}
	return m
}

func label(name string) string {
	switch name {
	case "runbook":
		return "(a) runbook"
	case "manual":
		return "(b) manual, one by one"
	case "parallel":
		return "(c) all deletes at once"
	case "drain":
		return "(d) drain-style evictions"
	}
	return name
}
