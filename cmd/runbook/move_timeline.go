package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runbookdev/runbook/actions"
)

// A pod move is judged at a glance by its shape: how fast pods came back, how
// many were away at once, where it waited on a budget, which owner took long.
// The printer records every deletePodsInPool step's events of this invocation
// into a moveTimeline; the reports carry it (JSON: "moves"; Markdown: Mermaid
// charts, which GitHub, GitLab and most ticket systems draw).

// moveTimeline is one step's pod move as this invocation saw it (a resumed run
// sees the part it ran).
type moveTimeline struct {
	Step    string       `json:"step"`
	Start   time.Time    `json:"start"`
	End     time.Time    `json:"end"`
	Samples []moveSample `json:"samples"`
	Owners  []*moveOwner `json:"owners"`
	owners  map[string]*moveOwner
	last    moveSample
}

// moveSample is the move's counts at one instant.
type moveSample struct {
	At           time.Duration `json:"at"` // since Start
	Replaced     int           `json:"replaced"`
	Evicted      int           `json:"evicted"`
	InFlight     int           `json:"inFlight"`
	WaitingOnPDB int           `json:"waitingOnPDB"`
}

// moveOwner is one owner's part: its first pod sent away to its last one replaced.
type moveOwner struct {
	Owner    string    `json:"owner"`
	Pods     int       `json:"pods"`
	Replaced int       `json:"replaced"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last,omitzero"`
}

// moveRecorder collects the timelines of a run's pod moves, in step order.
type moveRecorder struct {
	mu    sync.Mutex
	steps []*moveTimeline
}

func (r *moveRecorder) record(step string, e actions.PodMoveEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var tl *moveTimeline
	if n := len(r.steps); n > 0 && r.steps[n-1].Step == step {
		tl = r.steps[n-1]
	} else {
		tl = &moveTimeline{Step: step, owners: map[string]*moveOwner{}}
		r.steps = append(r.steps, tl)
	}
	tl.add(e)
}

// timelines returns the recorded moves that moved something.
func (r *moveRecorder) timelines() []*moveTimeline {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*moveTimeline
	for _, tl := range r.steps {
		if len(tl.Owners) > 0 {
			out = append(out, tl)
		}
	}
	return out
}

func (tl *moveTimeline) add(e actions.PodMoveEvent) {
	if len(tl.Samples) == 0 { // the first event: the counts start at zero
		tl.Start = e.Time
		tl.Samples = append(tl.Samples, moveSample{})
	}
	tl.End = e.Time
	s := tl.last
	s.At = e.Time.Sub(tl.Start)
	switch e.Type {
	case "progress":
		s.Replaced, s.Evicted, s.InFlight, s.WaitingOnPDB = e.Replaced, e.Moved, e.InFlight, e.WaitingOnPDB
	case "pod.evicted", "pod.deleted":
		o := tl.owner(e.Owner, e.Pod, e.Time)
		o.Pods++
		s.Evicted++
		s.InFlight++
	case "pod.replaced":
		o := tl.owner(e.Owner, e.Pod, e.Time)
		o.Replaced++
		o.Last = e.Time
		s.Replaced++
		s.InFlight = max(0, s.InFlight-1)
	default:
		return
	}
	tl.last = s
	tl.Samples = append(tl.Samples, s)
}

func (tl *moveTimeline) owner(owner, pod string, at time.Time) *moveOwner {
	if owner == "" {
		owner = "pod " + pod
	}
	o := tl.owners[owner]
	if o == nil {
		o = &moveOwner{Owner: owner, First: at}
		tl.owners[owner] = o
		tl.Owners = append(tl.Owners, o)
	}
	return o
}

// maxChartPoints keeps a chart readable (and its source small) on long moves.
const maxChartPoints = 60

// series samples the timeline at even steps: the counts as they stood then.
func (tl *moveTimeline) series() (step time.Duration, points []moveSample) {
	total := tl.End.Sub(tl.Start)
	step = time.Second
	if n := total / time.Second; n >= maxChartPoints {
		step = time.Duration(math.Ceil(float64(total)/float64(maxChartPoints)/float64(time.Second))) * time.Second
	}
	i := 0
	for at := time.Duration(0); ; at += step {
		for i+1 < len(tl.Samples) && tl.Samples[i+1].At <= at {
			i++
		}
		p := tl.Samples[i]
		p.At = at
		points = append(points, p)
		if at >= total {
			return step, points
		}
	}
}

// mermaid renders the timeline as two Mermaid charts: the counts over time
// (xychart: lines have no legend there, so the palette is fixed and named in
// the caption) and each owner's span (gantt).
func (tl *moveTimeline) mermaid() string {
	step, pts := tl.series()
	var b strings.Builder
	ints := func(f func(moveSample) int) string {
		s := make([]string, len(pts))
		for i, p := range pts {
			s[i] = fmt.Sprint(f(p))
		}
		return strings.Join(s, ", ")
	}
	xs := make([]string, len(pts))
	top := 1
	for i, p := range pts {
		xs[i] = fmt.Sprint(int(p.At / time.Second))
		top = max(top, p.Replaced, p.InFlight, p.WaitingOnPDB, p.Evicted)
	}
	fmt.Fprintf(&b, "Pods over time (every %s): **green** replaced, **blue** away at once (evicted, replacement not Ready yet), **orange** waiting on a disruption budget.\n\n", step)
	b.WriteString("```mermaid\n")
	b.WriteString(`%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "#2e7d32, #1565c0, #ef6c00"}}}}%%` + "\n")
	b.WriteString("xychart-beta\n")
	fmt.Fprintf(&b, "    title %q\n", tl.Step+": pods replaced, away, waiting on a budget")
	fmt.Fprintf(&b, "    x-axis \"seconds since the first eviction\" [%s]\n", strings.Join(xs, ", "))
	fmt.Fprintf(&b, "    y-axis \"pods\" 0 --> %d\n", top)
	fmt.Fprintf(&b, "    line [%s]\n", ints(func(p moveSample) int { return p.Replaced }))
	fmt.Fprintf(&b, "    line [%s]\n", ints(func(p moveSample) int { return p.InFlight }))
	fmt.Fprintf(&b, "    line [%s]\n", ints(func(p moveSample) int { return p.WaitingOnPDB }))
	b.WriteString("```\n\n")

	b.WriteString("Each owner, from its first pod evicted to its last one replaced (**red**: not all back when this invocation ended):\n\n")
	b.WriteString("```mermaid\ngantt\n")
	fmt.Fprintf(&b, "    title %s\n    dateFormat x\n    axisFormat %%M:%%S\n    tickInterval %s\n", ganttText(tl.Step+", each owner's pods away"), tickInterval(tl.End.Sub(tl.Start)))
	owners := slices.Clone(tl.Owners)
	slices.SortStableFunc(owners, func(a, b *moveOwner) int { return strings.Compare(namespaceOf(a.Owner), namespaceOf(b.Owner)) })
	section := "\x00"
	for _, o := range owners {
		if ns := namespaceOf(o.Owner); ns != section {
			section = ns
			fmt.Fprintf(&b, "    section %s\n", ganttText(orDash(ns)))
		}
		end, tag := o.Last, ""
		if end.IsZero() || o.Replaced < o.Pods {
			end, tag = tl.End, "crit, " // not all back when this invocation ended
		}
		if !end.After(o.First) {
			end = o.First.Add(time.Millisecond)
		}
		fmt.Fprintf(&b, "    %s (%d of %d back) : %s%d, %d\n", ganttText(o.Owner), o.Replaced, o.Pods, tag, o.First.UnixMilli(), end.UnixMilli())
	}
	b.WriteString("```\n")
	return b.String()
}

// tickInterval gives a gantt axis some ten ticks.
func tickInterval(d time.Duration) string {
	switch {
	case d <= 20*time.Second:
		return "1second"
	case d <= 2*time.Minute:
		return "10second"
	case d <= 20*time.Minute:
		return "1minute"
	case d <= 2*time.Hour:
		return "10minute"
	}
	return "1hour"
}

// namespaceOf is the namespace of "Kind ns/name" or "pod ns/name".
func namespaceOf(owner string) string {
	_, ref, _ := strings.Cut(owner, " ")
	ns, _, ok := strings.Cut(ref, "/")
	if !ok {
		return ""
	}
	return ns
}

// ganttText keeps a label inside Mermaid's gantt grammar: ':' separates a
// task's fields, '#' and ';' start comments and statements.
func ganttText(s string) string {
	return strings.NewReplacer(":", " ", "#", " ", ";", " ", "\n", " ").Replace(s)
}
