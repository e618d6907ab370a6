package api

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/grpcreflect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// describedServices are the services of matrixPackages in the generated
// descriptors linked into this binary, sorted: what the server is built
// to serve, independent of the list Mount keeps.
func describedServices() []string {
	var out []string
	for _, p := range describedProcedures() {
		if s := strings.Trim(serviceOf(p), "/"); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestReflectionListsEveryService: gRPC server reflection's ListServices
// (v1 and v1alpha, asked with grpc-go's own clients over HTTP/2, and v1
// under /api with connect's client) names exactly the services of the
// generated descriptors, which Mount serves; every procedure of each
// answers a call without a credential unauthenticated (a public one: not
// unimplemented), so each listed service is really mounted; the health
// service reports each SERVING and an unknown one NOT_FOUND; the files
// reflection serves for the listed services, imports included, link. A service
// mounted without its name in the list was invisible to grpcurl-style
// tools that start from the list.
func TestReflectionListsEveryService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	conn := grpcConn(t, e.srv)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	want := describedServices()
	if len(want) < 10 {
		t.Fatalf("found %d services in the descriptors", len(want))
	}

	v1, err := reflectv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := v1.Send(&reflectv1.ServerReflectionRequest{MessageRequest: &reflectv1.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := v1.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var gotV1 []string
	for _, s := range res.GetListServicesResponse().GetService() {
		gotV1 = append(gotV1, s.GetName())
	}
	_ = v1.CloseSend()

	v1a, err := reflectv1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := v1a.Send(&reflectv1alpha.ServerReflectionRequest{MessageRequest: &reflectv1alpha.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resA, err := v1a.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var gotV1alpha []string
	for _, s := range resA.GetListServicesResponse().GetService() {
		gotV1alpha = append(gotV1alpha, s.GetName())
	}
	_ = v1a.CloseSend()

	cs := grpcreflect.NewClient(e.srv.Client(), e.srv.URL+APIPrefix).NewStream(ctx)
	names, err := cs.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	// As grpcurl describes a service: the file holding it, then each
	// file it imports by name, until the set links.
	files := map[string]*descriptorpb.FileDescriptorProto{}
	for _, n := range names {
		fds, err := cs.FileContainingSymbol(n)
		if err != nil {
			t.Errorf("reflection FileContainingSymbol %s: %v", n, err)
			continue
		}
		queue := fds
		for len(queue) > 0 {
			fd := queue[0]
			queue = queue[1:]
			if files[fd.GetName()] != nil {
				continue
			}
			files[fd.GetName()] = fd
			for _, dep := range fd.GetDependency() {
				if files[dep] != nil {
					continue
				}
				more, err := cs.FileByFilename(dep)
				if err != nil {
					t.Errorf("reflection FileByFilename %s (imported by %s): %v", dep, fd.GetName(), err)
					continue
				}
				queue = append(queue, more...)
			}
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range files {
		set.File = append(set.File, fd)
	}
	linked, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("the files reflection serves do not link: %v", err)
	}
	for _, n := range names {
		if _, err := linked.FindDescriptorByName(n); err != nil {
			t.Errorf("%s is not in the files reflection serves: %v", n, err)
		}
	}
	if _, err := cs.Close(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	var gotAPI []string
	for _, n := range names {
		gotAPI = append(gotAPI, string(n))
	}

	for version, got := range map[string][]string{"v1": gotV1, "v1alpha": gotV1alpha, "v1 under /api": gotAPI} {
		slices.Sort(got)
		for _, s := range want {
			if !slices.Contains(got, s) {
				t.Errorf("reflection %s ListServices omits %s", version, s)
			}
		}
		for _, s := range got {
			if !slices.Contains(want, s) {
				t.Errorf("reflection %s ListServices names %s, which is no described service", version, s)
			}
		}
	}

	health := healthpb.NewHealthClient(conn)
	if r, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health of the server: %v %v, want SERVING", r.GetStatus(), err)
	}
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "sts.v1.NoSuchService"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of sts.v1.NoSuchService: %v, want NotFound", err)
	}
	for _, s := range want {
		if r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: s}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %s: %v %v, want SERVING", s, r.GetStatus(), err)
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(s))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			proc := "/" + s + "/" + string(m.Name())
			out := dynamicpb.NewMessage(m.Output())
			err := conn.Invoke(ctx, proc, dynamicpb.NewMessage(m.Input()), out, grpc.WaitForReady(true))
			switch code := status.Code(err); {
			case publicProcedures[proc]:
				if code == codes.Unimplemented {
					t.Errorf("%s without a credential: %v, want served", proc, err)
				}
			case code != codes.Unauthenticated:
				t.Errorf("%s without a credential: %v, want Unauthenticated", proc, err)
			}
		}
	}
}
