package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The generator reads every kind of answer the shop gives: a sized body, a chunked
// one, a redirect's Location, a body that runs to the close, and an answer that closes
// its connection (the next request redials); it sends the method, headers and body it
// was given.
func TestLoadgenReadsEveryAnswer(t *testing.T) {
	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/sized", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "9000")
		io.WriteString(w, strings.Repeat("x", 9000))
	})
	mux.HandleFunc("/unsized", func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack() // an answer with neither length nor chunks
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end")
		c.Close()
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 3 {
			io.WriteString(w, "chunk;")
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://gateway.example/pay?sign=abc", http.StatusSeeOther)
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("Cookie"), b)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	cases := []struct {
		req  request
		want func(*reply) string
	}{
		{request{Method: "GET", URL: srv.URL + "/sized"}, func(r *reply) string {
			return check(r.Code == 200 && len(r.Body) == 9000, "sized: %d, %d bytes %s", r.Code, len(r.Body), r.Error)
		}},
		{request{Method: "GET", URL: srv.URL + "/unsized"}, func(r *reply) string {
			return check(string(r.Body) == "to the end", "unsized: %q %s", r.Body, r.Error)
		}},
		{request{Method: "GET", URL: srv.URL + "/chunked"}, func(r *reply) string {
			return check(string(r.Body) == "chunk;chunk;chunk;", "chunked: %q", r.Body)
		}},
		{request{Method: "GET", URL: srv.URL + "/redirect"}, func(r *reply) string {
			return check(r.Code == 303 && r.Headers.Get("location") == "http://gateway.example/pay?sign=abc",
				"redirect: %d %q", r.Code, r.Headers.Get("Location"))
		}},
		{request{Method: "GET", URL: srv.URL + "/close"}, func(r *reply) string {
			return check(string(r.Body) == "bye", "close: %q", r.Body)
		}},
		{request{Method: "POST", URL: srv.URL + "/echo", Header: http.Header{"Cookie": {"s=1"}}, Body: []byte("a=b")},
			func(r *reply) string {
				return check(string(r.Body) == "POST s=1 a=b", "echo: %q", r.Body)
			}},
	}
	for _, c := range cases {
		var sent atomic.Int64
		const n = 20
		tr := func(r *request) error {
			if sent.Add(1) > n {
				return errNoTargets
			}
			*r = c.req
			return nil
		}
		before := conns.Load()
		tallies := runLoad(context.Background(), 2, 0, 0, tr, c.want)
		got, errs := 0, 0
		for _, ta := range tallies {
			got += len(ta.lat)
			errs += ta.errors
			for _, s := range ta.samples {
				t.Errorf("%s: %s", c.req.URL, s)
			}
		}
		if got != n || errs != 0 {
			t.Errorf("%s: %d replies, %d wrong; want %d, 0", c.req.URL, got, errs, n)
		}
		dials := conns.Load() - before
		if strings.HasSuffix(c.req.URL, "close") || strings.HasSuffix(c.req.URL, "unsized") {
			if dials < n {
				t.Errorf("%s: %d connections for %d requests; each answer closed its own", c.req.URL, dials, n)
			}
		} else if dials > 2 {
			t.Errorf("%s: %d connections for 2 workers; keep-alive lost", c.req.URL, dials)
		}
	}
}

// A refused connection is a counted error, not a hang or a crash.
func TestLoadgenCountsTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	var sent atomic.Int64
	tr := func(r *request) error {
		if sent.Add(1) > 3 {
			return errNoTargets
		}
		*r = request{Method: "GET", URL: url + "/"}
		return nil
	}
	tallies := runLoad(context.Background(), 1, 0, 0, tr, func(r *reply) string {
		if r.Code == 0 {
			return "transport: " + r.Error
		}
		return ""
	})
	if len(tallies[0].lat) != 3 || tallies[0].errors != 3 || len(tallies[0].samples) != 1 {
		t.Fatalf("%d replies, %d errors, samples %q; want 3, 3 and one sample", len(tallies[0].lat), tallies[0].errors,
			tallies[0].samples)
	}
}

// Paced, the generator sends about the rate asked for, for the duration asked for.
func TestLoadgenPaces(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	tr := func(r *request) error { *r = request{Method: "GET", URL: srv.URL + "/"}; return nil }
	start := time.Now()
	tallies := runLoad(context.Background(), 4, 200, 500*time.Millisecond, tr, func(*reply) string { return "" })
	took := time.Since(start)
	got := 0
	for _, ta := range tallies {
		got += len(ta.lat)
	}
	if got < 90 || got > 101 {
		t.Errorf("%d requests at 200/s for 0.5 s, want about 100", got)
	}
	if took < 450*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v for a 0.5 s run", took)
	}
}

func check(ok bool, format string, args ...any) string {
	if ok {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

// rawServer answers each connection with answer(i, c) for its i-th request (read up to
// its blank line), on a loopback port.
func rawServer(t *testing.T, answer func(i int, c net.Conn) (keep bool)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for { // the request's head (the generator's GETs have no body)
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if !answer(int(n.Add(1)-1), c) {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// An interim 103 is skipped, not taken for the answer (which would leave the real one
// to be read as the next request's).
func TestLoadgenSkipsInterimAnswers(t *testing.T) {
	base := rawServer(t, func(i int, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreq%d", i)
		return true
	})
	w := &worker{}
	defer w.close()
	for i := range 3 {
		r := w.do(&request{Method: "GET", URL: base + "/"})
		if r.Code != 200 || string(r.Body) != fmt.Sprintf("req%d", i) {
			t.Fatalf("request %d: %d %q %s", i, r.Code, r.Body, r.Error)
		}
	}
}

// A kept-alive connection the server closed while idle is dialled again at once, not
// counted as an error.
func TestLoadgenRedialsAConnectionClosedWhileIdle(t *testing.T) {
	base := rawServer(t, func(i int, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // closes after each answer, without saying so
	})
	w := &worker{}
	defer w.close()
	for i := range 3 {
		if i > 0 {
			time.Sleep(20 * time.Millisecond) // the close has arrived
		}
		if r := w.do(&request{Method: "GET", URL: base + "/"}); r.Code != 200 || string(r.Body) != "ok" {
			t.Fatalf("request %d: %d %q %s", i, r.Code, r.Body, r.Error)
		}
	}
}

// A gzip body that fails to inflate leaves no stale memo: the previous body, sent again,
// inflates to its own page.
func TestLoadgenGzipMemoSurvivesABrokenBody(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		io.WriteString(zw, s)
		zw.Close()
		return b.Bytes()
	}
	a, b := gz("page A"), gz("page B, longer than A")
	w := &worker{}
	if p, err := w.gunzip(a); err != nil || string(p) != "page A" {
		t.Fatalf("A: %q %v", p, err)
	}
	if _, err := w.gunzip(b[:len(b)-6]); err == nil {
		t.Fatal("a truncated body inflated")
	}
	if p, err := w.gunzip(a); err != nil || string(p) != "page A" {
		t.Fatalf("A again: %q %v", p, err)
	}
}

// Header lookups ignore folded continuation lines; Connection lists are read as lists.
func TestLoadgenHeader(t *testing.T) {
	h := header("Content-Type: text/html\r\nX-Note: a\r\n Location: /folded\r\nLocation: /real\r\n")
	if got := h.Get("location"); got != "/real" {
		t.Errorf("Get(location) = %q, want /real", got)
	}
	if !hasToken([]byte("keep-alive, Close"), "close") || hasToken([]byte("closed"), "close") {
		t.Error("hasToken misreads a Connection list")
	}
}
