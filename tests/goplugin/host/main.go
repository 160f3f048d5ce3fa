// A go-plugin host built on the real library (Debian's go-plugin 1.0.1, GOPATH mode) that launches
// the command after "--" as a plugin and prints one JSON line about what happened. Test-only:
// tests/goplugin/go_host_test.ts builds and runs it.
//
//	host -mode ping|nocookie|versions [-versions 1,2] [-automtls] [-sigint] -- deno run ... plugin ...
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// berthPlugin hands the host the raw connection; Berth's own services come later.
type berthPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (berthPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (berthPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return conn, nil
}

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BERTH_PLUGIN",
	MagicCookieValue: "berth-driver-engine",
}

type report map[string]interface{}

var autoMTLS, sigint bool

func main() {
	mode := flag.String("mode", "ping", "ping | nocookie | versions")
	versions := flag.String("versions", "1,2", "app versions the host offers in versions mode")
	flag.BoolVar(&autoMTLS, "automtls", false, "ask for go-plugin's AutoMTLS")
	flag.BoolVar(&sigint, "sigint", false, "send SIGINT to the plugin after Ping, then Ping again")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: host -mode ping|nocookie|versions -- command [args...]")
		os.Exit(2)
	}
	var out report
	switch *mode {
	case "ping":
		out = ping(flag.Args(), map[int]plugin.PluginSet{1: {"berth": berthPlugin{}}})
	case "versions":
		sets := map[int]plugin.PluginSet{}
		for _, v := range strings.Split(*versions, ",") {
			n, err := strconv.Atoi(v)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bad version %q\n", v)
				os.Exit(2)
			}
			sets[n] = plugin.PluginSet{"berth": berthPlugin{}}
		}
		out = ping(flag.Args(), sets)
	case "nocookie":
		out = noCookie(flag.Args())
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", *mode)
		os.Exit(2)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}

// ping: handshake, Ping (health "plugin"), the health status itself, then Kill and how the process
// ended. Kill waits up to 2 s for the process to exit after Shutdown and SIGKILLs it otherwise, so
// a graceful exit is: Kill returned in < 2 s and the process's own exit status is 0 (not a signal).
func ping(argv []string, sets map[int]plugin.PluginSet) report {
	var stderr bytes.Buffer // written by go-plugin's stderr goroutine, read only after Kill
	cmd := exec.Command(argv[0], argv[1:]...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: sets,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Cmd:              cmd,
		Stderr:           &stderr,
		StartTimeout:     30 * time.Second,
		AutoMTLS:         autoMTLS,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "host", Level: hclog.Debug, Output: os.Stderr,
		}),
	})
	out := report{"handshake": "failed"}
	defer func() {
		start := time.Now()
		client.Kill()
		out["killMs"] = time.Since(start).Milliseconds()
		if cmd.ProcessState != nil {
			out["exitCode"] = cmd.ProcessState.ExitCode() // -1 when a signal ended it
			out["exitedCleanly"] = cmd.ProcessState.ExitCode() == 0 && time.Since(start) < 2*time.Second
		}
		if addr, ok := out["socket"].(string); ok {
			_, err := os.Stat(addr)
			out["socketRemoved"] = os.IsNotExist(err)
		}
		out["stderr"] = stderr.String()
	}()

	rpc, err := client.Client()
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	out["handshake"] = "ok"
	out["version"] = client.NegotiatedVersion()
	if rc := client.ReattachConfig(); rc != nil {
		out["network"], out["socket"] = rc.Addr.Network(), rc.Addr.String()
	}
	if err := rpc.Ping(); err != nil {
		out["ping"], out["error"] = "failed", err.Error()
		return out
	}
	out["ping"] = "ok"
	// A terminal's Ctrl-C reaches the plugin too (same process group): it must keep serving.
	if sigint {
		cmd.Process.Signal(os.Interrupt)
		time.Sleep(500 * time.Millisecond)
		if err := rpc.Ping(); err != nil {
			out["pingAfterSigint"], out["error"] = "failed", err.Error()
			return out
		}
		out["pingAfterSigint"] = "ok"
	}
	raw, err := rpc.Dispense("berth")
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	health, err := grpc_health_v1.NewHealthClient(raw.(*grpc.ClientConn)).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		out["error"] = err.Error()
		return out
	}
	out["health"] = health.Status.String()
	if autoMTLS {
		out["cleartextRefused"] = cleartextRefused(out["socket"].(string))
	}
	return out
}

// cleartextRefused dials the plugin's socket as a host without AutoMTLS would (HTTP/2 cleartext)
// and reports whether the health check failed, as it must when the plugin serves TLS only.
func cleartextRefused(socket string) bool {
	conn, err := grpc.Dial("unused", grpc.WithInsecure(), // go-plugin's own target and dialer
		grpc.WithDialer(func(_ string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("unix", socket, timeout)
		}))
	if err != nil {
		return true
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err != nil
}

// noCookie runs the command as a user would, without the cookie, and reports what it printed.
func noCookie(argv []string) report {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, handshake.MagicCookieKey+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return report{"error": err.Error()}
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return report{"error": "still running after 30 s", "stdout": stdout.String(), "stderr": stderr.String()}
	}
	return report{"exitCode": cmd.ProcessState.ExitCode(), "stdout": stdout.String(), "stderr": stderr.String()}
}
