// A go-plugin host (Debian's go-plugin 1.0.1) that drives berth.v1.VolumeDriver: volumes created,
// mounted, refused, removed, then Berth SIGKILLed and relaunched on the same state dir. Prints one
// JSON line. Test-only; "berth/v1" is generated from proto/ by tests/goplugin/go_host_test.ts.
//
//	volumes_host [-automtls] -- deno run --allow-all main.ts plugin --state-dir DIR
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	berthv1 "berth/v1"
	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

type volumePlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (volumePlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (volumePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return berthv1.NewVolumeDriverClient(conn), nil
}

type step struct {
	Call    string      `json:"call"`
	Code    string      `json:"code"`
	Message string      `json:"message,omitempty"`
	Reply   interface{} `json:"reply,omitempty"`
}

func launch(argv []string) (*plugin.Client, *exec.Cmd, berthv1.VolumeDriverClient, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion: 1, MagicCookieKey: "BERTH_PLUGIN", MagicCookieValue: "berth-driver-engine",
		},
		Plugins:          plugin.PluginSet{"volumes": volumePlugin{}},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Cmd:              cmd,
		StartTimeout:     30 * time.Second,
		AutoMTLS:         autoMTLS,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Debug, Output: os.Stderr}),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, nil, nil, err
	}
	raw, err := rpc.Dispense("volumes")
	if err != nil {
		client.Kill()
		return nil, nil, nil, err
	}
	return client, cmd, raw.(berthv1.VolumeDriverClient), nil
}

var autoMTLS bool

func main() {
	flag.BoolVar(&autoMTLS, "automtls", false, "ask for go-plugin's AutoMTLS")
	flag.Parse()
	out := map[string]interface{}{}
	defer func() {
		line, _ := json.Marshal(out)
		fmt.Println(string(line))
	}()
	var steps []step
	record := func(call string, reply interface{}, err error) {
		s := status.Convert(err)
		if err != nil {
			reply = nil
		}
		steps = append(steps, step{call, s.Code().String(), s.Message(), reply})
	}
	ctx := context.Background()

	client, cmd, volumes, err := launch(flag.Args())
	if err != nil {
		out["error"] = err.Error()
		return
	}
	reply, err := volumes.Create(ctx, &berthv1.CreateVolumeRequest{Name: "db"})
	record("Create db", reply, err)
	mounted, err := volumes.Mount(ctx, &berthv1.MountRequest{Name: "db", Id: "c1"})
	record("Mount db c1", mounted, err)
	removed, err := volumes.Remove(ctx, &berthv1.VolumeName{Name: "db"})
	record("Remove db while mounted", removed, err)
	got, err := volumes.Get(ctx, &berthv1.VolumeName{Name: "nope"})
	record("Get nope", got, err)
	reply, err = volumes.Create(ctx, &berthv1.CreateVolumeRequest{Name: "-bad"})
	record("Create -bad", reply, err)
	unmounted, err := volumes.Unmount(ctx, &berthv1.MountRequest{Name: "db", Id: "c1"})
	record("Unmount db c1", unmounted, err)
	removed, err = volumes.Remove(ctx, &berthv1.VolumeName{Name: "db"})
	record("Remove db", removed, err)
	reply, err = volumes.Create(ctx, &berthv1.CreateVolumeRequest{Name: "keep"})
	record("Create keep", reply, err)
	mounted, err = volumes.Mount(ctx, &berthv1.MountRequest{Name: "keep", Id: "c2"})
	record("Mount keep c2", mounted, err)

	cmd.Process.Kill() // SIGKILL in the middle of the session; Kill() then only cleans up
	client.Kill()

	client, cmd, volumes, err = launch(flag.Args())
	if err != nil {
		out["steps"], out["error"] = steps, "relaunch: "+err.Error()
		return
	}
	listed, err := volumes.List(ctx, &berthv1.ListVolumesRequest{})
	record("List after relaunch", listed, err)
	start := time.Now()
	client.Kill()
	out["steps"], out["killMs"] = steps, time.Since(start).Milliseconds()
	out["exitCode"] = cmd.ProcessState.ExitCode()
}
