// A volume backend served with go-plugin's own plugin.Serve (Debian's go-plugin 1.0.1), as a
// reader would write one: each volume is a directory under ROOT/volumes, and ROOT/mounted/NAME
// says the backend holds it mounted. Test-only: tests/goplugin/go_backend_test.ts builds it and
// Berth launches it from --config.
//
//	gobackend ROOT
//
// It writes its pid to ROOT/pid. A Mount of a volume whose directory holds a file named "hang"
// marks it mounted, writes ROOT/hanging and never answers: the test kills it there.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	berthv1 "berth/v1"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type backend struct {
	berthv1.UnimplementedVolumeBackendServer
	root string
}

func (b *backend) dir(name string) (string, error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return "", status.Errorf(codes.InvalidArgument, "bad volume name %q", name)
	}
	return filepath.Join(b.root, "volumes", name), nil
}

func (b *backend) Create(_ context.Context, req *berthv1.BackendCreateRequest) (*berthv1.BackendMountpoint, error) {
	dir, err := b.dir(req.Name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &berthv1.BackendMountpoint{Mountpoint: dir}, nil
}

func (b *backend) Mount(_ context.Context, req *berthv1.BackendVolume) (*berthv1.BackendMountpoint, error) {
	dir, err := b.dir(req.Name)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, status.Errorf(codes.NotFound, "no volume %q", req.Name)
	}
	if err := os.WriteFile(filepath.Join(b.root, "mounted", req.Name), nil, 0o644); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if _, err := os.Stat(filepath.Join(dir, "hang")); err == nil {
		os.WriteFile(filepath.Join(b.root, "hanging"), []byte(req.Name), 0o644)
		select {}
	}
	return &berthv1.BackendMountpoint{Mountpoint: dir}, nil
}

func (b *backend) Unmount(_ context.Context, req *berthv1.BackendVolume) (*berthv1.BackendDone, error) {
	if _, err := b.dir(req.Name); err != nil {
		return nil, err
	}
	err := os.Remove(filepath.Join(b.root, "mounted", req.Name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &berthv1.BackendDone{}, nil
}

func (b *backend) Remove(_ context.Context, req *berthv1.BackendVolume) (*berthv1.BackendDone, error) {
	dir, err := b.dir(req.Name)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(b.root, "mounted", req.Name)); err == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is mounted", req.Name)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &berthv1.BackendDone{}, nil
}

func (b *backend) Survey(context.Context, *berthv1.BackendSurveyRequest) (*berthv1.BackendSurveyResponse, error) {
	entries, err := os.ReadDir(filepath.Join(b.root, "volumes"))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	out := &berthv1.BackendSurveyResponse{}
	for _, entry := range entries {
		out.Volumes = append(out.Volumes, &berthv1.BackendHeld{
			Name:       entry.Name(),
			Mountpoint: filepath.Join(b.root, "volumes", entry.Name()),
		})
	}
	return out, nil
}

// backendPlugin is the plugin side only: Berth is the host.
type backendPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	root string
}

func (p *backendPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	berthv1.RegisterVolumeBackendServer(s, &backend{root: p.root})
	return nil
}

func (p *backendPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, errors.New("gobackend is a plugin, not a host")
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gobackend ROOT")
		os.Exit(2)
	}
	root := os.Args[1]
	for _, dir := range []string{"volumes", "mounted"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.WriteFile(filepath.Join(root, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "BERTH_BACKEND",
			MagicCookieValue: "berth-volume-backend",
		},
		Plugins:    plugin.PluginSet{"backend": &backendPlugin{root: root}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
