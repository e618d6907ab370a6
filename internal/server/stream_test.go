package server

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// TestStreamingThroughMiddleware serves the gRPC health and reflection
// handlers through the full middleware chain on a real listener (h2c) and
// drives them with grpc-go's own clients: server streams need the response
// writer to flush, so every wrapper must pass Flush through.
func TestStreamingThroughMiddleware(t *testing.T) {
	const svc = "grpc.health.v1.Health"
	s, _ := newTest(t, Options{GCInterval: time.Hour}, func(mux *http.ServeMux) {
		p, h := grpchealth.NewHandler(grpchealth.NewStaticChecker(svc))
		mux.Handle(p, h)
		p, h = grpcreflect.NewHandlerV1(grpcreflect.NewStaticReflector(svc))
		mux.Handle(p, h)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })

	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer rcancel()

	// connect's grpchealth answers Watch with unimplemented, which the
	// gRPC health protocol allows (clients then stop health-checking); what
	// must not happen is an internal error that names our writer type.
	watch, err := healthpb.NewHealthClient(conn).Watch(rctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	_, err = watch.Recv()
	if status.Code(err) != codes.Unimplemented || strings.Contains(err.Error(), "statusWriter") {
		t.Errorf("Watch.Recv = %v, want unimplemented without internal type names", err)
	}
	check, err := healthpb.NewHealthClient(conn).Check(rctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil || check.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Check = %v, %v; want SERVING", check, err)
	}

	stream, err := reflectpb.NewServerReflectionClient(conn).ServerReflectionInfo(rctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{
		MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}); err != nil {
		t.Fatalf("reflection send: %v", err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection recv: %v", err)
	}
	var names []string
	for _, sv := range res.GetListServicesResponse().GetService() {
		names = append(names, sv.GetName())
	}
	if len(names) != 1 || names[0] != svc {
		t.Errorf("reflection services = %v, want [%s]", names, svc)
	}
	_ = stream.CloseSend()
}
