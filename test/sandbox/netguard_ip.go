package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// ipCommand is the host's route table through iproute2's ip. Shelling out costs
// ~10–15 ms per call on the 2-core machine (a list, an add or a delete), a handful
// per Start and Stop, and needs no netlink module (vishvananda/netlink is not in
// go.sum).
type ipCommand struct{ path string }

func newIPCommand() (routeTable, error) {
	path, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("no ip command (iproute2): %w", err)
	}
	return ipCommand{path: path}, nil
}

func (c ipCommand) run(args ...string) ([]byte, error) {
	cmd := exec.Command(c.path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// routes lists the main table of both families (`ip -j route show table main`).
func (c ipCommand) routes() ([]hostRoute, error) {
	var all []hostRoute
	for _, family := range []string{"-4", "-6"} {
		out, err := c.run("-j", family, "route", "show", "table", "main")
		if err != nil {
			return nil, fmt.Errorf("network guard: listing routes: %w", err)
		}
		rs, err := parseIPRoutes(out, family == "-6")
		if err != nil {
			return nil, fmt.Errorf("network guard: ip %s route show: %w", family, err)
		}
		all = append(all, rs...)
	}
	return all, nil
}

// parseIPRoutes reads `ip -j route show`: "dst" is "default", an address (a host
// route) or a prefix.
func parseIPRoutes(out []byte, v6 bool) ([]hostRoute, error) {
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	var raw []struct {
		Dst      string `json:"dst"`
		Type     string `json:"type"`
		Protocol string `json:"protocol"`
		Gateway  string `json:"gateway"`
		Dev      string `json:"dev"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, err
	}
	routes := make([]hostRoute, 0, len(raw))
	for _, r := range raw {
		var dst netip.Prefix
		switch {
		case r.Dst == "default" && v6:
			dst = netip.MustParsePrefix("::/0")
		case r.Dst == "default":
			dst = netip.MustParsePrefix("0.0.0.0/0")
		case strings.Contains(r.Dst, "/"):
			p, err := netip.ParsePrefix(r.Dst)
			if err != nil {
				return nil, err
			}
			dst = p.Masked()
		default:
			a, err := netip.ParseAddr(r.Dst)
			if err != nil {
				return nil, err
			}
			dst = netip.PrefixFrom(a, a.BitLen())
		}
		routes = append(routes, hostRoute{Dst: dst, Type: r.Type, Proto: r.Protocol, Gateway: r.Gateway, Dev: r.Dev})
	}
	return routes, nil
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "-4"
	}
	return "-6"
}

func (c ipCommand) addUnreachable(p netip.Prefix) error {
	if _, err := c.run(family(p), "route", "add", "unreachable", p.String(), "proto", strconv.Itoa(routeProto)); err != nil {
		return fmt.Errorf("network guard: %w", err)
	}
	return nil
}

func (c ipCommand) delUnreachable(p netip.Prefix) error {
	_, err := c.run(family(p), "route", "del", "unreachable", p.String(), "proto", strconv.Itoa(routeProto))
	if err != nil && !strings.Contains(err.Error(), "No such process") {
		return fmt.Errorf("network guard: %w", err)
	}
	return nil
}
