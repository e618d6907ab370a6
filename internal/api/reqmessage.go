package api

import (
	"context"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// messageInterceptor runs check on the request message of every procedure
// whose name begins with prefix ("" for all), server side only, before
// the handler reads it; an error from check is the answer, and the
// handler does not run. check may change the message.
func messageInterceptor(prefix string, check func(protoreflect.Message) error) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if m, ok := req.Any().(proto.Message); ok && !req.Spec().IsClient && strings.HasPrefix(req.Spec().Procedure, prefix) {
				if err := check(m.ProtoReflect()); err != nil {
					return nil, err
				}
			}
			return next(ctx, req)
		}
	}
}
