package sandbox

import (
	"path/filepath"
	"time"

	"github.com/runbookdev/runbook/test/scenarios"
)

// kwokNodeAnnotation marks the nodes kwok simulates; every scenario node carries it.
const (
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"
)

// processStopTimeout bounds a graceful stop; the clients of the apiserver exit in
// well under a second when the apiserver is still up.
const processStopTimeout = 15 * time.Second

func newProcess(toolsDir, workDir, name string, args ...string) *process {
	return &process{
		name:        name,
		path:        filepath.Join(toolsDir, name),
		args:        args,
		logPath:     filepath.Join(logDir(workDir), name+".log"),
		stopTimeout: processStopTimeout,
	}
}

// newControllerManager runs kube-controller-manager the way kubeadm configures it:
// its own identity with per-controller service-account credentials, node CIDR
// allocation from the cluster CIDR (which is where tools read --cluster-cidr from).
// Leader election and the serving port are off: one instance, no scraping.
func newControllerManager(toolsDir, workDir, kubeconfig string, cluster scenarios.Cluster) *process {
	return newProcess(toolsDir, workDir, ControllerManager,
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(pkiDir(workDir), "sa-signer.key"),
		"--root-ca-file="+servingCAPath(workDir),
		"--allocate-node-cidrs=true",
		"--cluster-cidr="+cluster.PodSubnet,
		"--service-cluster-ip-range="+cluster.ServiceSubnet,
		"--cluster-name=sandbox",
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	)
}

func newScheduler(toolsDir, workDir, kubeconfig string) *process {
	return newProcess(toolsDir, workDir, Scheduler,
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
	)
}

// newKwok runs kwok for the annotated nodes with the sandbox's stages.
func newKwok(toolsDir, workDir, kubeconfig, stagesPath string) *process {
	return newProcess(toolsDir, workDir, Kwok,
		"--kubeconfig="+kubeconfig,
		"--config="+stagesPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"="+kwokNodeValue,
		"--node-lease-duration-seconds=40",
	)
}

func servingCAPath(workDir string) string { return filepath.Join(pkiDir(workDir), "serving-ca.crt") }
