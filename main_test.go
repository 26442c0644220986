package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestServerTimeouts: newServer sets every timeout, and a slowloris client that sends
// its headers a byte at a time is cut off within ReadHeaderTimeout.
func TestServerTimeouts(t *testing.T) {
	srv := newServer("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout,
		"ReadTimeout": srv.ReadTimeout, "WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if d <= 0 || d > 2*time.Minute+time.Second {
			t.Errorf("%s = %v: want set and at most 2m", name, d)
		}
	}
	if srv.ReadHeaderTimeout > 10*time.Second {
		t.Errorf("ReadHeaderTimeout %v is too generous for slow clients", srv.ReadHeaderTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d", srv.MaxHeaderBytes)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// A normal client is served.
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Slowloris: one header byte every 100ms, never finishing the headers.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, bufio.NewReader(conn)) // returns when the server hangs up
		closed <- time.Since(start)
	}()
	req := "GET / HTTP/1.1\r\nHost: shop\r\nX-Slow: " + string(make([]byte, 0))
	limit := srv.ReadHeaderTimeout + 3*time.Second
	sent := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-closed:
			if d < srv.ReadHeaderTimeout-500*time.Millisecond {
				t.Errorf("cut off after %v, before ReadHeaderTimeout %v", d, srv.ReadHeaderTimeout)
			}
			t.Logf("slowloris: server hung up after %v (%d header bytes sent; ReadHeaderTimeout %v)", d.Round(time.Millisecond), sent, srv.ReadHeaderTimeout)
			return
		case <-tick.C:
			if time.Since(start) > limit {
				t.Fatalf("slowloris connection still open after %v (ReadHeaderTimeout %v)", time.Since(start), srv.ReadHeaderTimeout)
			}
			b := byte('a' + sent%26)
			if sent < len(req) {
				b = req[sent]
			}
			if _, err := conn.Write([]byte{b}); err != nil {
				d := time.Since(start)
				t.Logf("slowloris: write failed after %v (%d bytes): %v", d.Round(time.Millisecond), sent, err)
				return
			}
			sent++
		}
	}
}
