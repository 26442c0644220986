package web

import (
	"net"
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	_, proxy, _ := net.ParseCIDR("10.0.0.5/32")
	_, lb, _ := net.ParseCIDR("10.1.0.0/16")
	behind := []*net.IPNet{proxy, lb}
	for _, tc := range []struct {
		name    string
		proxies []*net.IPNet
		peer    string
		xff     string
		want    string
	}{
		{"no proxy configured: the header is anyone's claim", nil, "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"through the proxy", behind, "10.0.0.5:5000", "198.51.100.1", "198.51.100.1"},
		{"through two proxies", behind, "10.0.0.5:5000", "198.51.100.1, 10.1.2.3", "198.51.100.1"},
		{"a forged hop before the real client", behind, "10.0.0.5:5000", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		{"not through the proxy: the peer, whatever it claims", behind, "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"a private address is not trusted unless listed", behind, "192.168.1.1:5000", "198.51.100.1", "192.168.1.1"},
		{"loopback is not trusted unless listed", behind, "127.0.0.1:5000", "198.51.100.1", "127.0.0.1"},
		{"junk in the header: the peer", behind, "10.0.0.5:5000", "not-an-ip", "10.0.0.5"},
		{"no header through the proxy: the proxy", behind, "10.0.0.5:5000", "", "10.0.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientIP(tc.proxies)(r); got != tc.want {
				t.Fatalf("client %q, want %q", got, tc.want)
			}
		})
	}
}
