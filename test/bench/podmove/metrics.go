package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

var (
	requestTotal = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)
	labelPair    = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// apiRequests reads apiserver_request_total, summed per "verb resource[/sub]" and
// in total: every request the API server served, whoever sent it.
func apiRequests(ctx context.Context, kube kubernetes.Interface) (map[string]float64, error) {
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		m := requestTotal.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range labelPair.FindAllStringSubmatch(m[1], -1) {
			l[kv[1]] = kv[2]
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		out[l["verb"]+" "+res] += v
		out["TOTAL"] += v
	}
	return out, nil
}
