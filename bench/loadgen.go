package main

// The load generator. It shares the machine's cores with the shop, so every
// microsecond it spends on a request is one the shop doesn't get: net/http's client
// (through vegeta) cost as much CPU per GET / as the shop did (64 µs against 65 on
// this project's two cores) and 150–170 µs per purchase, about a tenth of the machine,
// so the bench measured its client nearly as much as the shop. Here each worker owns
// one keep-alive connection and does its own request and response in turn: no
// goroutines handing a request to a connection's writer and reader, no per-request
// header maps, bodies read into the worker's own buffer. It speaks the HTTP/1.1 the
// shop answers: Content-Length or chunked bodies, Connection: close honoured.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// request is one HTTP request of a scenario: URL is absolute (http://host/path?query).
type request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// targeter fills in a scenario's next request, or answers errNoTargets once its pool is
// used up. Workers call it concurrently.
type targeter func(*request) error

// errNoTargets ends a scenario whose pool of requests is used up.
var errNoTargets = errors.New("no targets left")

// reply is a response as a scenario's check sees it. Body and Headers are the worker's
// buffers: valid only during the check.
type reply struct {
	Code    uint16 // 0: no HTTP answer, see Error
	Body    []byte // inflated if it came gzipped
	Wire    int    // the body's bytes as received
	Headers header
	Error   string
	Latency time.Duration
}

// header is a response's header block as received, looked up on demand.
type header []byte

// Get is the first value of header name k ("" if absent), compared case-insensitively.
func (h header) Get(k string) string {
	rest := []byte(h)
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			continue // a folded continuation, not a field of its own
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(name), k) {
			return string(bytes.TrimSpace(value))
		}
	}
	return ""
}

// attackTimeout bounds one request (dial, send and the whole answer).
const attackTimeout = 30 * time.Second

// tally is one worker's share of a scenario's results.
type tally struct {
	lat     []time.Duration
	errors  int
	samples []string // distinct error reasons, at most five
}

// runLoad drives workers connections at tr until d has passed (d = 0: until the targets run
// out), ctx ends, or, at perSec > 0, at that many requests per second in all (each
// request sent when a tick and a free worker meet; latency counts from the send).
// check judges every reply ("" = as expected).
func runLoad(ctx context.Context, workers int, perSec int, d time.Duration, tr targeter, check func(*reply) string) []tally {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var end time.Time
	if d > 0 {
		end = time.Now().Add(d)
	}
	var ticks chan struct{}
	if perSec > 0 {
		ticks = make(chan struct{})
		go pace(ctx, perSec, end, ticks)
	}
	out := make([]tally, workers)
	var wg sync.WaitGroup
	for i := range out {
		t := &out[i]
		t.lat = make([]time.Duration, 0, 1<<12)
		wg.Go(func() {
			w := &worker{}
			defer w.close()
			for {
				if ticks != nil {
					if _, ok := <-ticks; !ok {
						return
					}
				} else if ctx.Err() != nil || (!end.IsZero() && !time.Now().Before(end)) {
					return
				}
				var req request
				if err := tr(&req); err != nil {
					cancel() // the pool is used up (or broken): every worker stops
					if err != errNoTargets {
						t.note("targets: " + err.Error())
					}
					return
				}
				r := w.do(&req)
				t.lat = append(t.lat, r.Latency)
				if reason := check(&r); reason != "" {
					t.note(reason)
				}
			}
		})
	}
	wg.Wait()
	return out
}

// note counts a reply that failed its check, keeping the reason as a sample.
func (t *tally) note(reason string) {
	t.errors++
	t.sample(reason)
}

// sample keeps reason among the samples: at most five, each once.
func (t *tally) sample(reason string) {
	if len(t.samples) < 5 && !slices.Contains(t.samples, reason) {
		t.samples = append(t.samples, reason)
	}
}

// merge is all of ts as one tally.
func merge(ts []tally) tally {
	var all tally
	for _, t := range ts {
		all.lat = append(all.lat, t.lat...)
		all.errors += t.errors
		for _, reason := range t.samples {
			all.sample(reason)
		}
	}
	return all
}

// pace sends perSec ticks a second until end (or ctx ends), then closes ticks. A tick
// waits for a free worker: when all are busy the rate falls, nothing queues up.
func pace(ctx context.Context, perSec int, end time.Time, ticks chan<- struct{}) {
	defer close(ticks)
	start, every := time.Now(), time.Second/time.Duration(perSec)
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * every)
		if !end.IsZero() && (!at.Before(end) || !time.Now().Before(end)) {
			return // behind the rate, it catches up, but never past the end
		}
		if wait := time.Until(at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		select {
		case ticks <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

// worker is one keep-alive connection and its buffers.
type worker struct {
	// The last gzip body and what it inflated to: the shop sends the same compressed
	// page to every plain visitor, and the same bytes inflate to the same page.
	gz, plain []byte
	zr        *gzip.Reader
	host      string
	c         net.Conn
	br        *bufio.Reader
	out       []byte // the request being sent
	hdr       []byte // the answer's header block
	body      []byte // the answer's body
}

func (w *worker) close() {
	if w.c != nil {
		w.c.Close()
		w.c = nil
	}
}

// do sends req and reads its answer. A failed request closes its connection and the
// next one dials again; a kept-alive connection the shop closed while it sat idle
// (nothing of an answer read) is redialled at once, as net/http's client does.
func (w *worker) do(req *request) reply {
	start := time.Now()
	reused := w.c != nil
	r, err := w.roundTrip(req, start.Add(attackTimeout))
	if err != nil && reused && errors.Is(err, errStale) {
		w.close()
		r, err = w.roundTrip(req, start.Add(attackTimeout))
	}
	r.Latency = time.Since(start)
	if err != nil {
		w.close()
		r = reply{Error: err.Error(), Latency: r.Latency}
	}
	return r
}

// errStale marks a request whose connection failed before any byte of an answer.
var errStale = errors.New("connection closed before an answer")

// roundTrip sends req and reads its answer, all of it (dial included) by deadline.
func (w *worker) roundTrip(req *request, deadline time.Time) (reply, error) {
	host, path, err := splitURL(req.URL)
	if err != nil {
		return reply{}, err
	}
	if w.c != nil && host != w.host {
		w.close()
	}
	if w.c == nil {
		c, err := (&net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}).Dial("tcp", host)
		if err != nil {
			return reply{}, err
		}
		w.c, w.host = c, host
		if w.br == nil {
			w.br = bufio.NewReaderSize(c, 64<<10)
		} else {
			w.br.Reset(c)
		}
	}
	if err := w.c.SetDeadline(deadline); err != nil {
		return reply{}, err
	}
	w.out = appendRequest(w.out[:0], req, host, path)
	if _, err := w.c.Write(w.out); err != nil {
		return reply{}, fmt.Errorf("%w: %v", errStale, err)
	}
	return w.readReply(req.Method == http.MethodHead)
}

// splitURL cuts http://host/path?query into host and /path?query.
func splitURL(u string) (host, path string, err error) {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return "", "", fmt.Errorf("not an http:// URL: %q", u)
	}
	host, path = rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	return host, path, nil
}

func appendRequest(b []byte, req *request, host, path string) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: storefront-bench\r\nAccept-Encoding: gzip\r\n"...)
	for k, vs := range req.Header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if req.Body != nil || req.Method == http.MethodPost {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, req.Body...)
}

// readReply reads one answer: its status, header block and body.
func (w *worker) readReply(head bool) (reply, error) {
	proto, code, err := w.readStatus(true)
	for err == nil && code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if err = w.skipFields(); err == nil { // an interim answer: the real one follows
			proto, code, err = w.readStatus(false)
		}
	}
	if err != nil {
		return reply{}, err
	}
	w.hdr = w.hdr[:0]
	length, chunked, gzipped, closing := -1, false, false, proto == "HTTP/1.0"
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return reply{}, err
		}
		if isBlank(line) {
			break
		}
		w.hdr = append(w.hdr, line...)
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return reply{}, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Content-Encoding")):
			gzipped = bytes.EqualFold(value, []byte("gzip"))
		case bytes.EqualFold(name, []byte("Connection")):
			closing = closing || hasToken(value, "close")
		}
	}
	r := reply{Code: uint16(code), Headers: header(w.hdr)}
	switch {
	case head || code == http.StatusNoContent || code == http.StatusNotModified || code < 200:
		w.body = w.body[:0]
	case chunked:
		if w.body, err = readAllInto(w.body[:0], httputil.NewChunkedReader(w.br)); err == nil {
			err = w.skipFields()
		}
	case length >= 0:
		if cap(w.body) < length {
			w.body = make([]byte, length)
		}
		w.body = w.body[:length]
		_, err = io.ReadFull(w.br, w.body)
	default: // the body runs to the connection's close
		w.body, err = readAllInto(w.body[:0], w.br)
		closing = true
	}
	if err != nil {
		return reply{}, err
	}
	r.Body, r.Wire = w.body, len(w.body)
	if gzipped {
		if r.Body, err = w.gunzip(w.body); err != nil {
			return reply{}, err
		}
	}
	if closing {
		w.close()
	}
	return r, nil
}

// readStatus reads a status line (HTTP/1.1 200 OK): its protocol and code. first says
// it is the answer's first line, where the connection closing means it was stale.
func (w *worker) readStatus(first bool) (proto string, code int, err error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		if first && len(line) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			err = fmt.Errorf("%w: %v", errStale, err)
		}
		return "", 0, err
	}
	proto, status, ok := strings.Cut(string(line), " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(status) < 3 {
		return "", 0, fmt.Errorf("malformed status line %q", line)
	}
	if code, err = strconv.Atoi(status[:3]); err != nil {
		return "", 0, fmt.Errorf("malformed status line %q", line)
	}
	return proto, code, nil
}

// skipFields reads header fields up to the empty line that ends them: a chunked body's
// trailer, or an interim answer's fields.
func (w *worker) skipFields() error {
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if isBlank(line) {
			return nil
		}
	}
}

// gunzip inflates body (reusing the last inflation when body is the same bytes).
func (w *worker) gunzip(body []byte) ([]byte, error) {
	if w.gz != nil && bytes.Equal(body, w.gz) {
		return w.plain, nil
	}
	var err error
	if w.zr == nil {
		w.zr, err = gzip.NewReader(bytes.NewReader(body))
	} else {
		err = w.zr.Reset(bytes.NewReader(body))
	}
	if err != nil {
		return nil, err
	}
	w.gz = nil // w.plain is about to stop being its inflation
	if w.plain, err = readAllInto(w.plain[:0], w.zr); err != nil {
		return nil, err
	}
	w.gz = append([]byte(nil), body...)
	return w.plain, nil
}

// isBlank says whether line is the empty line that ends a header block.
func isBlank(line []byte) bool {
	return string(line) == "\r\n" || string(line) == "\n"
}

// hasToken says whether the comma-separated header value v lists token t.
func hasToken(v []byte, t string) bool {
	for part := range bytes.SplitSeq(v, []byte(",")) {
		if strings.EqualFold(string(bytes.TrimSpace(part)), t) {
			return true
		}
	}
	return false
}

// readAllInto appends everything r has to b.
func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}
