package actions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/kubeclient"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/textlist"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

var waitForPods = Definition{
	Decl: &decl.Action{
		Name:    "waitForPods",
		Summary: "Wait until the pods a label selector matches are all Ready (e.g. calico-node on every node before pools change).",
		Description: `Watches the pods of the namespace that match the selector until at least minPods of them
exist and every one is Ready; fails after timeout naming the pods that are not Ready and why
(their containers' waiting reasons, their latest Warning event). Terminating pods and pods that
have finished (Succeeded, Failed) are not counted: a rollout's old pods do not hold the step up.
A check: it changes nothing and is satisfied as soon as the condition holds.`,
		Params: []decl.Param{
			checked(p("namespace", value.String, true, nil, "Namespace of the pods."), check.NamespaceName),
			checked(p("selector", value.String, true, nil, "Label selector of the pods, e.g. k8s-app=calico-node."), check.LabelSelector),
			checked(p("minPods", value.Int, false, 1, "At least this many pods must match (a misspelt selector matching none never passes)."), check.AtLeast(1)),
			p("timeout", value.Duration, false, 5*time.Minute, "Give up (and fail the step) after this long."),
		},
		Outputs: []decl.Output{
			{Name: "ready", Type: value.Int, Description: "How many matching pods were Ready."},
		},
		Needs: []decl.Permission{
			{Resource: "pods", Verbs: []string{"list", "watch"}, Why: "the matching pods and their readiness (actions/wait_for_pods.go)"},
			{Resource: "events", Verbs: []string{"list"}, Why: "why a pod is not Ready: its latest Warning event (actions/wait_for_pods.go)"},
		},
	},
	New: func(b *binding) Impl { return &waitForPodsImpl{env: b.env} },
}

// waitForPodsImpl waits on a watch of the selected pods, never by polling.
type waitForPodsImpl struct{ env *poolEnv }

type waitInput struct {
	namespace, selector string
	minPods             int
	timeout             time.Duration
}

func (a *waitForPodsImpl) start(c *Call) (waitInput, kubernetes.Interface, error) {
	in := waitInput{minPods: 1}
	var err error
	if in.namespace, err = paramString(c, "namespace"); err != nil {
		return in, nil, err
	}
	if in.selector, err = paramString(c, "selector"); err != nil {
		return in, nil, err
	}
	if n, ok, err := paramInt(c, "minPods"); err != nil {
		return in, nil, err
	} else if ok {
		in.minPods = n
	}
	if in.timeout, err = paramDuration(c, "timeout", 5*time.Minute); err != nil {
		return in, nil, err
	}
	if a.env.kube == nil {
		return in, nil, ErrNoCluster
	}
	return in, a.env.kube, nil
}

// readiness is what the selected pods look like at one moment.
type readiness struct {
	ready    int
	notReady []*corev1.Pod // sorted by name
}

func (r readiness) done(in waitInput) bool {
	return len(r.notReady) == 0 && r.ready >= in.minPods
}

func (r readiness) String() string {
	return fmt.Sprintf("%d of %d pods Ready", r.ready, r.ready+len(r.notReady))
}

// countReady judges the pods as the step does: live (not terminating, not
// finished) pods count, and each must have condition Ready true.
func countReady(pods []*corev1.Pod) readiness {
	var r readiness
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if kubeclient.PodReady(p) {
			r.ready++
		} else {
			r.notReady = append(r.notReady, p)
		}
	}
	sort.Slice(r.notReady, func(i, j int) bool { return r.notReady[i].Name < r.notReady[j].Name })
	return r
}

func (in waitInput) what() string {
	return fmt.Sprintf("pods %s in namespace %s", in.selector, in.namespace)
}

// Plan says how things stand now; the wait itself happens at apply.
func (a *waitForPodsImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	in, kube, err := a.start(c)
	if err != nil {
		return Planned{}, fmt.Errorf("waitForPods: %w", err)
	}
	list, err := kube.CoreV1().Pods(in.namespace).List(ctx, metav1.ListOptions{LabelSelector: in.selector})
	if err != nil {
		return Planned{}, fmt.Errorf("waitForPods %s: %w", in.what(), err)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	r := countReady(pods)
	line := fmt.Sprintf("%s: now %s", in.what(), r)
	if !r.done(in) {
		line += fmt.Sprintf("; waits up to %s for at least %d, all Ready", in.timeout, in.minPods)
	}
	return Planned{Change: plans.Check, Details: []string{line}}, nil
}

// Apply waits until the condition holds or the timeout passes.
func (a *waitForPodsImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	in, kube, err := a.start(c)
	if err != nil {
		return Outcome{}, fmt.Errorf("waitForPods: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	pods := kube.CoreV1().Pods(in.namespace)
	lw := kubeclient.ListWatch(pods.List, pods.Watch, kubeclient.Selecting(in.selector, ""))
	var last readiness
	judge := func(s cache.Store) bool {
		objs := s.List()
		ps := make([]*corev1.Pod, len(objs))
		for i, o := range objs {
			ps[i] = o.(*corev1.Pod)
		}
		last = countReady(ps)
		return last.done(in)
	}
	var store cache.Store
	_, err = watchtools.UntilWithSync(wctx, lw, &corev1.Pod{},
		func(s cache.Store) (bool, error) { store = s; return judge(s), nil },
		func(watch.Event) (bool, error) { return judge(store), nil })
	if err == nil {
		return Outcome{Outputs: map[string]any{"ready": last.ready}, Message: fmt.Sprintf("%s: %s", in.what(), last)}, nil
	}
	if ctx.Err() != nil || !errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return Outcome{}, fmt.Errorf("waitForPods %s: %w", in.what(), err)
	}
	// Timed out: say what each pod is waiting for. The wait's context is spent,
	// so the diagnosis gets a short one of its own.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), diagnoseTimeout)
	defer dcancel()
	return Outcome{}, fmt.Errorf("waitForPods %s: after %s, %s (at least %d needed): %s", in.what(), in.timeout, last, in.minPods,
		notReadyReasons(dctx, kube, last.notReady))
}

// notReadyReasons names the pods that are not Ready, each with what holds it.
func notReadyReasons(ctx context.Context, kube kubernetes.Interface, pods []*corev1.Pod) string {
	if len(pods) == 0 {
		return "no pod is missing readiness: too few pods match"
	}
	const shown = 10
	return textlist.CappedFunc(pods, shown, func(p *corev1.Pod) string {
		var why []string
		if p.Spec.NodeName == "" {
			why = append(why, "not scheduled")
		} else {
			why = append(why, string(p.Status.Phase)+" on "+p.Spec.NodeName)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason != "" {
				why = append(why, cs.Name+": "+w.Reason)
			}
		}
		if ev := kubeclient.LatestWarning(ctx, kube, p.Namespace, p.Name); ev != "" {
			why = append(why, ev)
		}
		return p.Name + " (" + strings.Join(why, "; ") + ")"
	})
}
