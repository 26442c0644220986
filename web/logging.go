package web

import (
	"context"
	"log/slog"
)

type ctxKey int

const requestIDKey ctxKey = iota

// WithRequestID returns ctx carrying a request id for log lines.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// LogHandler wraps a slog.Handler so every record logged with a request's context
// carries its request_id, without each call site remembering to add it.
type LogHandler struct{ slog.Handler }

// NewLogHandler wraps base.
func NewLogHandler(base slog.Handler) *LogHandler { return &LogHandler{base} }

// Handle adds request_id from ctx.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "request_id"
			return !has
		})
		if !has {
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper.
func (h *LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &LogHandler{h.Handler.WithAttrs(as)}
}

// WithGroup keeps the wrapper.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	return &LogHandler{h.Handler.WithGroup(name)}
}
