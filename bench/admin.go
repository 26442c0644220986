package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// adminLogin logs the operator in as a browser would (GET the login page for the CSRF
// cookie, POST the form) and returns the Cookie header for back-office pages:
// admin_session (path /admin) and _csrf.
func (b *bench) adminLogin(ctx context.Context, email, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	loginURL := b.srv.base + "/admin/login"
	if err := mustLoopback(loginURL); err != nil {
		return "", err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, loginURL, nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	admin, _ := url.Parse(b.srv.base + "/admin/")
	csrf := ""
	for _, ck := range jar.Cookies(admin) {
		if ck.Name == "_csrf" {
			csrf = ck.Value
		}
	}
	if csrf == "" {
		return "", fmt.Errorf("GET /admin/login set no _csrf cookie (status %d)", resp.StatusCode)
	}
	form := url.Values{"email": {email}, "password": {password}, "next": {"/admin/"}, "_csrf": {csrf}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, loginURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		return "", fmt.Errorf("POST /admin/login: %d %q %.200s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var parts []string
	hasSession := false
	for _, ck := range jar.Cookies(admin) {
		parts = append(parts, ck.Name+"="+ck.Value)
		hasSession = hasSession || ck.Name == "admin_session"
	}
	if !hasSession {
		return "", errors.New("POST /admin/login set no admin_session cookie")
	}
	cookie := strings.Join(parts, "; ")
	// The session opens the dashboard, and a shopper's page does not need it.
	page, code, err := get(ctx, &http.Client{Timeout: 20 * time.Second}, b.srv.base+"/admin/", cookie)
	if err != nil || code != 200 || !strings.Contains(page, "今日概览") {
		return "", fmt.Errorf("the operator's cookie does not open /admin/: status %d, err %v", code, err)
	}
	return cookie, nil
}

// rssSampler reads the shop's VmRSS every few milliseconds until stopped, keeping the peak.
type rssSampler struct {
	peak atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{})}
	read := func() {
		if v, err := vmRSS(pid); err == nil && v > s.peak.Load() {
			s.peak.Store(v)
		}
	}
	read()
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	})
	return s
}

// done stops the sampler and returns the peak it saw.
func (s *rssSampler) done() int64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak.Load()
}

// exportRun is what downloads of the CSV export measured.
type exportRun struct {
	downloads, rows int
	elapsed         time.Duration
	times           []time.Duration
	bytes           int64
	rssBefore       int64
	rssPeak         int64
	cpu             *cpuUse
	errors          []string
	profile         string
}

// export downloads the orders CSV for [from, to] repeatedly, one at a time, for the
// scenario's duration (at least once, at most maxDownloads), reading each as CSV and
// checking it has exactly wantRows orders after its header. The shop's VmRSS is sampled
// every 2 ms throughout: rssPeak minus rssBefore is what streaming cost it in memory.
func (b *bench) export(ctx context.Context, name, cookie, from, to string, wantRows int) (*exportRun, error) {
	const maxDownloads = 5
	u := b.srv.base + "/admin/export/orders.csv?" + url.Values{"from": {from}, "to": {to}}.Encode()
	if err := mustLoopback(u); err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	defer c.CloseIdleConnections()
	pid := b.srv.cmd.Process.Pid
	run := &exportRun{}
	var err error
	if run.rssBefore, err = vmRSS(pid); err != nil {
		return nil, err
	}
	waitProfile := b.profile(ctx, name)
	sampler := sampleRSS(pid, 2*time.Millisecond)
	cpu0, cpuErr := b.sampleCPU(ctx)
	start := time.Now()
	for run.downloads < maxDownloads && (run.downloads == 0 || time.Since(start) < b.o.duration) {
		if err := ctx.Err(); err != nil {
			sampler.done()
			return nil, err
		}
		t0 := time.Now()
		rows, n, err := download(ctx, c, u, cookie)
		run.times = append(run.times, time.Since(t0))
		run.downloads++
		run.rows += rows
		run.bytes += n
		if err == nil && rows != wantRows {
			err = fmt.Errorf("%d rows, want %d", rows, wantRows)
		}
		if err != nil {
			run.errors = append(run.errors, err.Error())
		}
	}
	run.elapsed = time.Since(start)
	cpu1, err := b.sampleCPU(ctx)
	if cpuErr == nil && err == nil {
		cu := cpuBetween(cpu0, cpu1, run.rows)
		run.cpu = &cu
	}
	run.rssPeak = sampler.done()
	run.profile = waitProfile()
	return run, ctx.Err()
}

// download GETs the export and reads it as CSV: the UTF-8 BOM and the header, then
// every row with the header's number of fields. It returns the rows after the header
// and the bytes read; a short file (the shop's "# 导出中断" line) is an error.
func download(ctx context.Context, c *http.Client, u, cookie string) (int, int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Cookie", cookie)
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, 0, fmt.Errorf("status %d, %s: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	cr := &countingReader{r: resp.Body}
	r := csv.NewReader(cr)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return 0, cr.n, fmt.Errorf("reading the header: %w", err)
	}
	if !strings.HasPrefix(head[0], "\uFEFF订单号") {
		return 0, cr.n, fmt.Errorf("header starts %q, not BOM + 订单号", head[0])
	}
	rows := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, cr.n, nil
		}
		if err != nil {
			return rows, cr.n, fmt.Errorf("after %d rows: %w", rows, err)
		}
		if strings.HasPrefix(rec[0], "#") {
			return rows, cr.n, fmt.Errorf("the export says it broke off after %d rows: %q", rows, rec[0])
		}
		rows++
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
