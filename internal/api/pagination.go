package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/opensts/sts/internal/sts"
)

// Pagination from the query string. The Stainless-generated SDKs
// (@gitpod/sdk, gitpod-sdk-go, gitpod-sdk-python) send a List call's page
// size and cursor as query parameters of the POST (?pageSize=…&token=…)
// and follow next_token with ?token=…, leaving the body's pagination
// empty. withPageQuery picks those parameters up, and pageQueryInterceptor
// copies them into the request message before any handler runs, so every
// List RPC accepts both places without code of its own. A value in the
// body wins over the query.
//
// Two request shapes are understood: a `pagination` message field holding
// page_size and token (gitpod.v1), and page_size with page_token at the
// top level (sts.v1 AuditService). A request without either is left alone.

// pageQuery is what the query string said; has* tell "absent" from "".
type pageQuery struct {
	size, token       string
	hasSize, hasToken bool
}

type pageQueryKey struct{}

// withPageQuery records the pagination query parameters of a request in
// its context. pageSize (or page_size) is the size; token, pageToken (or
// page_token) the cursor.
func withPageQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		var pq pageQuery
		for _, k := range []string{"pageSize", "page_size"} {
			if q.Has(k) {
				pq.size, pq.hasSize = q.Get(k), true
				break
			}
		}
		for _, k := range []string{"token", "pageToken", "page_token"} {
			if q.Has(k) {
				pq.token, pq.hasToken = q.Get(k), true
				break
			}
		}
		if pq.hasSize || pq.hasToken {
			r = r.WithContext(context.WithValue(r.Context(), pageQueryKey{}, pq))
		}
		next.ServeHTTP(w, r)
	})
}

// pageQueryInterceptor merges the recorded query parameters into the
// request message (server side only).
func pageQueryInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if pq, ok := ctx.Value(pageQueryKey{}).(pageQuery); ok && !req.Spec().IsClient {
				if m, ok := req.Any().(proto.Message); ok {
					if err := applyPageQuery(m.ProtoReflect(), pq); err != nil {
						return nil, err
					}
				}
			}
			return next(ctx, req)
		}
	}
}

// applyPageQuery sets the page size and cursor of msg from pq where the
// body left them unset.
func applyPageQuery(msg protoreflect.Message, pq pageQuery) error {
	target, tokenName := msg, protoreflect.Name("page_token")
	if fd := msg.Descriptor().Fields().ByName("pagination"); fd != nil && fd.Message() != nil && !fd.IsList() {
		target, tokenName = msg.Mutable(fd).Message(), "token"
	}
	fields := target.Descriptor().Fields()
	sizeFD, tokenFD := fields.ByName("page_size"), fields.ByName(tokenName)
	if sizeFD == nil || tokenFD == nil || sizeFD.Kind() != protoreflect.Int32Kind || tokenFD.Kind() != protoreflect.StringKind {
		return nil // not a paginated request
	}
	if pq.hasSize && target.Get(sizeFD).Int() == 0 {
		n, err := strconv.ParseInt(pq.size, 10, 32)
		if errors.Is(err, strconv.ErrRange) && n > 0 {
			// Past int32: as large a page as the body can ask for,
			// which the list bounds as it bounds any size.
			err = nil
		}
		if err != nil || n < 0 {
			return sts.Errorf(sts.Invalid, "pageSize query parameter: want a non-negative integer, got %q", truncate(pq.size, 32))
		}
		target.Set(sizeFD, protoreflect.ValueOfInt32(int32(n)))
	}
	if pq.hasToken && target.Get(tokenFD).String() == "" {
		target.Set(tokenFD, protoreflect.ValueOfString(pq.token))
	}
	return nil
}

// truncate keeps an echoed input short.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
