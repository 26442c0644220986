package web

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestLogHandlerAddsRequestIDOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(slog.NewTextHandler(&buf, nil)))
	ctx := WithRequestID(context.Background(), "req-42")
	log.InfoContext(ctx, "plain")
	log.InfoContext(ctx, "explicit", "request_id", "req-42")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines: %q", lines)
	}
	for i, want := range []int{1, 1, 0} {
		if got := strings.Count(lines[i], "request_id=req-42"); got != want {
			t.Errorf("line %d has request_id %d times: %s", i, got, lines[i])
		}
	}
}
