package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc CPU times. It is 100 on every Linux
// build Go supports, and Go has no sysconf to ask.
const clockTick = 10 * time.Millisecond

// cpuSample is where CPU time had gone at one moment: the shop process, this process
// (the load generator) and the whole machine, so a scenario can say who spent what.
type cpuSample struct {
	shop, self time.Duration
	busy, idle time.Duration // whole machine, all cores
	at         time.Time
}

// sampleCPU reads the shop's and our own CPU time and the machine's busy/idle split.
func sampleCPU(shopPID int) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", shopPID))
	if err != nil {
		return s, err
	}
	// The command name in field 2 may hold spaces; utime and stime are fields 14 and 15,
	// i.e. the 12th and 13th after the closing parenthesis.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("short /proc/%d/stat", shopPID)
	}
	for _, x := range f[11:13] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return s, err
		}
		s.shop += time.Duration(n) * clockTick
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, err
	}
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	line, _, _ := strings.Cut(string(st), "\n")
	cols := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(cols) < 8 || cols[0] != "cpu" {
		return s, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	for i, x := range cols[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return s, err
		}
		if i == 3 || i == 4 { // idle, iowait
			s.idle += time.Duration(n) * clockTick
		} else {
			s.busy += time.Duration(n) * clockTick
		}
	}
	return s, nil
}

// cpuUse is a scenario's CPU bill: per request for the shop and the generator, and how
// much of the machine sat idle (a high figure means the shop waited, not computed).
type cpuUse struct {
	ShopUSPerReq float64 `json:"shop_cpu_us_per_req"`
	GenUSPerReq  float64 `json:"generator_cpu_us_per_req"`
	ShopCores    float64 `json:"shop_cores"`
	IdlePct      float64 `json:"machine_idle_pct"`
	// OtherCores is the machine's busy time that was neither the shop's nor the bench's
	// (other processes, and interrupt work no process is billed for), in cores: well
	// above a few tenths, someone else was using the machine and the figures are low.
	OtherCores float64 `json:"other_cores"`
}

func cpuBetween(a, b cpuSample, requests int) cpuUse {
	var u cpuUse
	wall := b.at.Sub(a.at).Seconds()
	if requests > 0 {
		u.ShopUSPerReq = float64((b.shop - a.shop).Microseconds()) / float64(requests)
		u.GenUSPerReq = float64((b.self - a.self).Microseconds()) / float64(requests)
	}
	if wall > 0 {
		u.ShopCores = (b.shop - a.shop).Seconds() / wall
	}
	if tot := (b.busy - a.busy) + (b.idle - a.idle); tot > 0 {
		u.IdlePct = 100 * float64(b.idle-a.idle) / float64(tot)
	}
	if wall > 0 {
		u.OtherCores = max(0, ((b.busy-a.busy)-(b.shop-a.shop)-(b.self-a.self)).Seconds()/wall)
	}
	return u
}
