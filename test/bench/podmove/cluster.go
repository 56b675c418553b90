package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	caloptions "github.com/projectcalico/calico/libcalico-go/lib/options"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

const (
	oldPoolName = "default-ipv4-ippool"
	newPoolName = "new-pool"
	namespaces  = 4
)

var ippools = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}

// benchCluster is one fresh sandbox with the benchmark's workloads running.
type benchCluster struct {
	sb       *sandbox.Cluster
	kube     kubernetes.Interface
	dyn      dynamic.Interface
	tracker  *tracker
	bringUp  time.Duration
	ipamRate float64 // addresses the CNI stand-in assigned per second during bring-up
}

// scenario is the cluster without workloads: the harness creates those itself, to
// time the bring-up and measure the IPAM throughput of this machine.
func scenario(o options) (*scenarios.Scenario, error) {
	y := fmt.Sprintf(`apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: bench-%d
description: podmove benchmark
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: %s, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true, blockSize: 26}
pods: {startDelay: %s}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: %d}
`, o.pods, oldPoolName, o.startDelay, o.workers)
	s, err := scenarios.Parse([]byte(y))
	if err != nil {
		return nil, fmt.Errorf("bench scenario: %w", err)
	}
	return s, nil
}

func startCluster(ctx context.Context, o options) (*benchCluster, error) {
	s, err := scenario(o)
	if err != nil {
		return nil, err
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{Scenario: s, ReadyTimeout: 5 * time.Minute, Progress: os.Stderr})
	if err != nil {
		return nil, err
	}
	cfg := sb.RESTConfig()
	cfg.QPS, cfg.Burst = 2000, 4000
	c := &benchCluster{sb: sb, kube: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg)}
	if c.tracker, err = newTracker(ctx, c.kube); err != nil {
		return c, err
	}
	return c, c.bringUpWorkloads(ctx, o)
}

func (c *benchCluster) stop(keep bool) {
	c.tracker.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if keep {
		fmt.Fprintf(os.Stderr, "   cluster logs kept in %s\n", c.sb.LogDir())
	}
	if err := c.sb.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "   stopping the cluster: %v\n", err)
	}
}

// bringUpWorkloads creates the Deployments and their PDBs and waits until every
// pod is Ready, sampling the CNI stand-in's assignments for the IPAM throughput.
func (c *benchCluster) bringUpWorkloads(ctx context.Context, o options) error {
	start := time.Now()
	for i := 0; i < namespaces; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i)}}
		if _, err := c.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace: %w", err)
		}
	}
	replicas := int32(o.replicas)
	mu := intstr.FromString("25%")
	for i := 0; i < o.pods/o.replicas; i++ {
		ns, name := fmt.Sprintf("app-%d", i%namespaces), fmt.Sprintf("d%03d", i)
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &mu, Selector: sel}}
		if _, err := c.kube.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create PDB: %w", err)
		}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: sel,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: scenarios.DefaultImage}}}}}}
		if _, err := c.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create deployment: %w", err)
		}
		c.tracker.expect(ns+"/"+name, o.replicas)
	}
	// IPAM throughput: assignments between the first and the last one, sampled.
	var first, last time.Time
	var firstN, lastN int64
	sample := func() {
		n := c.sb.CNIStats().Assigned
		now := time.Now()
		if firstN == 0 && n > 0 {
			first, firstN = now, n
		}
		if n > lastN {
			last, lastN = now, n
		}
	}
	deadline := time.Now().Add(20 * time.Minute)
	for !c.tracker.allReadyIn(oldPool) {
		if time.Now().After(deadline) {
			return fmt.Errorf("bring-up: not every pod Ready after 20m: %s", c.tracker.summary())
		}
		sample()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	sample()
	c.bringUp = time.Since(start)
	if d := last.Sub(first).Seconds(); d > 0 {
		c.ipamRate = float64(lastN-firstN) / d
	}
	// Let the disruption controller publish every budget's status.
	return c.waitBudgetsSettled(ctx, o)
}

func (c *benchCluster) waitBudgetsSettled(ctx context.Context, o options) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pdbs, err := c.kube.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		settled := 0
		for _, p := range pdbs.Items {
			if p.Status.ObservedGeneration >= p.Generation && p.Status.CurrentHealthy == int32(o.replicas) && p.Status.DisruptionsAllowed > 0 {
				settled++
			}
		}
		if settled >= o.pods/o.replicas {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d budgets settled", settled, o.pods/o.replicas)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// switchPools adds new-pool and disables the old pool, the same way for every
// contender: the runbook's own ensurePool/disablePool steps are not what is measured.
func (c *benchCluster) switchPools(ctx context.Context) error {
	cal, err := c.sb.NewCalicoClient()
	if err != nil {
		return err
	}
	_, err = cal.IPPools().Create(ctx, &v3.IPPool{ObjectMeta: metav1.ObjectMeta{Name: newPoolName}, Spec: v3.IPPoolSpec{
		CIDR: newPool.String(), IPIPMode: v3.IPIPModeAlways, VXLANMode: v3.VXLANModeNever, NATOutgoing: true, BlockSize: 26, NodeSelector: "all()"}},
		caloptions.SetOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create %s: %w", newPoolName, err)
	}
	if _, err := c.dyn.Resource(ippools).Patch(ctx, oldPoolName, types.MergePatchType, []byte(`{"spec":{"disabled":true}}`), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("disable %s: %w", oldPoolName, err)
	}
	return nil
}
