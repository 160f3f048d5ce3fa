// A minimal Docker volume plugin that keeps its volumes in memory and never writes to disk: the
// baseline bench/volume_bench.ts drives with the same workload as Berth, to show what the HTTP and
// JSON path alone costs on this machine. Standard library only; written from the plugin protocol.
//
//	go build -o go_volume_plugin go_volume_plugin.go && ./go_volume_plugin -socket /tmp/p.sock
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

type request struct {
	Name string
	ID   string
}

type plugin struct {
	mu      sync.Mutex
	root    string
	volumes map[string]map[string]int // volume name -> mount ID -> Mounts without an Unmount
}

// call runs one VolumeDriver method on the in-memory table; an error becomes {"Err": ...}.
func (p *plugin) call(method string, req request) (interface{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mounts, found := p.volumes[req.Name]
	mountpoint := map[string]string{"Mountpoint": p.root + "/" + req.Name + "/_data"}
	switch {
	case method == "Create":
		if !found {
			p.volumes[req.Name] = map[string]int{}
		}
		return struct{}{}, nil
	case method == "List":
		list := []map[string]string{}
		for name := range p.volumes {
			list = append(list, map[string]string{"Name": name})
		}
		return map[string]interface{}{"Volumes": list}, nil
	case method == "Capabilities":
		return map[string]interface{}{"Capabilities": map[string]string{"Scope": "local"}}, nil
	case !found:
		return nil, fmt.Errorf("volume %q not found", req.Name)
	case method == "Remove" && len(mounts) > 0:
		return nil, fmt.Errorf("volume %q is in use", req.Name)
	case method == "Remove":
		delete(p.volumes, req.Name)
		return struct{}{}, nil
	case method == "Mount":
		mounts[req.ID]++
		return mountpoint, nil
	case method == "Unmount" && mounts[req.ID] == 0:
		return nil, fmt.Errorf("mount ID %q does not hold volume %q", req.ID, req.Name)
	case method == "Unmount":
		if mounts[req.ID]--; mounts[req.ID] == 0 {
			delete(mounts, req.ID)
		}
		return struct{}{}, nil
	case method == "Path":
		return mountpoint, nil
	case method == "Get":
		return map[string]interface{}{"Volume": map[string]string{"Name": req.Name}}, nil
	}
	return nil, fmt.Errorf("unknown method VolumeDriver.%s", method)
}

func (p *plugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body := http.StatusOK, interface{}(nil)
	var req request
	if r.URL.Path == "/Plugin.Activate" {
		body = map[string][]string{"Implements": {"VolumeDriver"}}
	} else if err := json.NewDecoder(r.Body).Decode(&req); err != nil && r.ContentLength > 0 {
		status, body = http.StatusBadRequest, map[string]string{"Err": err.Error()}
	} else if reply, err := p.call(strings.TrimPrefix(r.URL.Path, "/VolumeDriver."), req); err != nil {
		status, body = http.StatusInternalServerError, map[string]string{"Err": err.Error()}
	} else {
		body = reply
	}
	w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func main() {
	socket := flag.String("socket", "/run/docker/plugins/go-baseline.sock", "unix socket to listen on")
	root := flag.String("root", "/var/lib/go-baseline/volumes", "mountpoint prefix (nothing is created)")
	flag.Parse()
	os.Remove(*socket)
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-baseline:", err)
		os.Exit(1)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		listener.Close() // also removes the socket file
		os.Exit(0)
	}()
	fmt.Fprintln(os.Stderr, "go-baseline: serving", *socket)
	http.Serve(listener, &plugin{root: *root, volumes: map[string]map[string]int{}})
}
