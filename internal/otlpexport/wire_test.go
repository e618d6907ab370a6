package otlpexport

import (
	"bytes"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// The full go.opentelemetry.io/proto/otlp messages cannot judge the
// exporter in this test binary: they register the same protobuf names as
// the slim ones, and the second registration panics. checkWire is the
// independent judge instead: it reads the request body field by field
// with protowire, by the field numbers of the OTLP .proto files
// (opentelemetry/proto/trace/v1/trace.proto), without generated code.

type wireSpan struct {
	traceID, spanID, parent []byte
	traceState, name        string
	kind                    uint64
	start, end              uint64
	flags                   uint32
	attrs, events, links    int
	droppedAttrs            uint64
	droppedEvents           uint64
	droppedLinks            uint64
	statusCode              uint64
	statusMessage           string
	scopeName, scopeVersion string
	resourceAttrs           int
}

// fields calls f for each top-level field of msg; it fails the test on
// malformed input.
func fields(t *testing.T, msg []byte, f func(num protowire.Number, typ protowire.Type, v []byte, n uint64)) {
	t.Helper()
	for len(msg) > 0 {
		num, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(l))
		}
		msg = msg[l:]
		var (
			v []byte
			n uint64
		)
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(msg)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(msg)
		case protowire.Fixed64Type:
			n, l = protowire.ConsumeFixed64(msg)
		case protowire.Fixed32Type:
			var x uint32
			x, l = protowire.ConsumeFixed32(msg)
			n = uint64(x)
		default:
			t.Fatalf("unexpected wire type %v", typ)
		}
		if l < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(l))
		}
		msg = msg[l:]
		f(num, typ, v, n)
	}
}

func parseWire(t *testing.T, body []byte) []wireSpan {
	var out []wireSpan
	fields(t, body, func(num protowire.Number, _ protowire.Type, rs []byte, _ uint64) {
		if num != 1 { // ExportTraceServiceRequest.resource_spans
			t.Fatalf("request field %d", num)
		}
		resAttrs := 0
		var scopeSpans [][]byte
		fields(t, rs, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) {
			switch num {
			case 1: // resource
				fields(t, v, func(num protowire.Number, _ protowire.Type, _ []byte, _ uint64) {
					if num == 1 {
						resAttrs++
					}
				})
			case 2: // scope_spans
				scopeSpans = append(scopeSpans, v)
			}
		})
		for _, ss := range scopeSpans {
			var name, version string
			var spans [][]byte
			fields(t, ss, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) {
				switch num {
				case 1: // scope
					fields(t, v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) {
						switch num {
						case 1:
							name = string(v)
						case 2:
							version = string(v)
						}
					})
				case 2:
					spans = append(spans, v)
				}
			})
			for _, sp := range spans {
				w := wireSpan{scopeName: name, scopeVersion: version, resourceAttrs: resAttrs}
				fields(t, sp, func(num protowire.Number, _ protowire.Type, v []byte, n uint64) {
					switch num {
					case 1:
						w.traceID = v
					case 2:
						w.spanID = v
					case 3:
						w.traceState = string(v)
					case 4:
						w.parent = v
					case 5:
						w.name = string(v)
					case 6:
						w.kind = n
					case 7:
						w.start = n
					case 8:
						w.end = n
					case 9:
						w.attrs++
					case 10:
						w.droppedAttrs = n
					case 11:
						w.events++
					case 12:
						w.droppedEvents = n
					case 13:
						w.links++
					case 14:
						w.droppedLinks = n
					case 15:
						fields(t, v, func(num protowire.Number, _ protowire.Type, v []byte, n uint64) {
							switch num {
							case 2:
								w.statusMessage = string(v)
							case 3:
								w.statusCode = n
							}
						})
					case 16:
						w.flags = uint32(n)
					}
				})
				out = append(out, w)
			}
		}
	})
	return out
}

func checkWire(t *testing.T, spans []sdktrace.ReadOnlySpan, body []byte) {
	t.Helper()
	got := parseWire(t, body)
	if len(got) != len(spans) {
		t.Fatalf("wire: %d spans, want %d", len(got), len(spans))
	}
	// OTLP numbering, written out here rather than taken from transform.go.
	kind := map[trace.SpanKind]uint64{trace.SpanKindInternal: 1, trace.SpanKindServer: 2, trace.SpanKindClient: 3, trace.SpanKindProducer: 4, trace.SpanKindConsumer: 5}
	status := []uint64{0, 2, 1} // codes.Unset, codes.Error, codes.Ok → UNSET 0, ERROR 2, OK 1
	for _, sd := range spans {
		sc := sd.SpanContext()
		tid, sid := sc.TraceID(), sc.SpanID()
		var w *wireSpan
		for i := range got {
			if bytes.Equal(got[i].spanID, sid[:]) {
				w = &got[i]
			}
		}
		if w == nil {
			t.Errorf("wire: span %q missing", sd.Name())
			continue
		}
		var parent []byte
		if p := sd.Parent(); p.IsValid() {
			psid := p.SpanID()
			parent = psid[:]
		}
		flags := uint32(sc.TraceFlags()) | 1<<8
		if sd.Parent().IsRemote() {
			flags |= 1 << 9
		}
		is := sd.InstrumentationScope()
		ok := bytes.Equal(w.traceID, tid[:]) && bytes.Equal(w.parent, parent) &&
			w.traceState == sc.TraceState().String() && w.name == sd.Name() && w.kind == kind[sd.SpanKind()] &&
			w.start == uint64(sd.StartTime().UnixNano()) && w.end == uint64(sd.EndTime().UnixNano()) &&
			w.flags == flags && w.attrs == len(sd.Attributes()) && w.events == len(sd.Events()) &&
			w.links == len(sd.Links()) && w.droppedAttrs == uint64(sd.DroppedAttributes()) &&
			w.droppedEvents == uint64(sd.DroppedEvents()) && w.droppedLinks == uint64(sd.DroppedLinks()) &&
			w.statusCode == status[sd.Status().Code] && w.statusMessage == sd.Status().Description &&
			w.scopeName == is.Name && w.scopeVersion == is.Version && w.resourceAttrs == sd.Resource().Len()
		if !ok {
			t.Errorf("wire: span %q read as %+v", sd.Name(), *w)
		}
	}
}
