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
// (the load generator), the database server's processes serving the shop (PostgreSQL;
// SQLite runs inside the shop) and the whole machine, so a scenario can say who spent
// what.
type cpuSample struct {
	shop, self time.Duration
	db         map[int]time.Duration // by server process; nil on SQLite
	dbOK       bool                  // db was read (PostgreSQL, its processes readable here)
	busy, idle time.Duration         // whole machine, all cores
	steal      time.Duration         // of busy: the hypervisor running other machines
	at         time.Time
}

// procCPU is the user and system CPU time process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in field 2 may hold spaces; utime and stime are fields 14 and 15,
	// i.e. the 12th and 13th after the closing parenthesis.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var d time.Duration
	for _, x := range f[11:13] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, err
		}
		d += time.Duration(n) * clockTick
	}
	return d, nil
}

// sampleCPU reads the shop's and our own CPU time and the machine's busy/idle split.
func sampleCPU(shopPID int) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	var err error
	if s.shop, err = procCPU(shopPID); err != nil {
		return s, err
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
		switch i {
		case 3, 4: // idle, iowait
			s.idle += time.Duration(n) * clockTick
		case 7: // steal
			s.steal += time.Duration(n) * clockTick
			s.busy += time.Duration(n) * clockTick
		default:
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
	// The PostgreSQL server's processes serving the shop's connections (absent on SQLite,
	// whose work is the shop's own).
	DBUSPerReq *float64 `json:"db_cpu_us_per_req,omitempty"`
	DBCores    *float64 `json:"db_cores,omitempty"`
	IdlePct    float64  `json:"machine_idle_pct"`
	// OtherCores is the machine's busy time that was neither the shop's, nor the bench's,
	// nor (PostgreSQL) the server's for the shop (other processes, and interrupt work no
	// process is billed for), in cores: well above a few tenths, someone else was using
	// the machine and the figures are low.
	OtherCores float64 `json:"other_cores"`
	// StealCores is the time the hypervisor gave to other virtual machines (steal),
	// in cores: the machine itself was slower. The machine's busy time holds it, but so
	// may the shop's and the bench's own CPU time, so it can exceed OtherCores (seen:
	// 0.60 against 0.47).
	StealCores float64 `json:"steal_cores"`
}

func cpuBetween(a, b cpuSample, requests int) cpuUse {
	return cpuSpent(a, b).use(requests)
}

// cpuDelta is the CPU time gone between two samples. Deltas add up: a scenario run in
// parts (see attackBeside) is billed for its parts, not for what ran between them.
type cpuDelta struct {
	shop, self, db, busy, idle, steal, wall time.Duration
	dbOK                                    bool
}

// cpuSpent is the CPU time gone from a to b.
func cpuSpent(a, b cpuSample) cpuDelta {
	d := cpuDelta{shop: b.shop - a.shop, self: b.self - a.self, busy: b.busy - a.busy, idle: b.idle - a.idle,
		steal: b.steal - a.steal, wall: b.at.Sub(a.at), dbOK: a.dbOK && b.dbOK}
	if d.dbOK {
		for pid, t := range b.db {
			if before := a.db[pid]; before <= t {
				d.db += t - before // a process that started in between counts from zero
			} else {
				d.db += t // the pid was reused
			}
		}
	}
	return d
}

// plus is d and e together.
func (d cpuDelta) plus(e cpuDelta) cpuDelta {
	return cpuDelta{shop: d.shop + e.shop, self: d.self + e.self, db: d.db + e.db, busy: d.busy + e.busy,
		idle: d.idle + e.idle, steal: d.steal + e.steal, wall: d.wall + e.wall, dbOK: d.dbOK && e.dbOK}
}

// use is d's bill for requests requests.
func (d cpuDelta) use(requests int) cpuUse {
	var u cpuUse
	wall := d.wall.Seconds()
	if requests > 0 {
		u.ShopUSPerReq = float64(d.shop.Microseconds()) / float64(requests)
		u.GenUSPerReq = float64(d.self.Microseconds()) / float64(requests)
	}
	if wall > 0 {
		u.ShopCores = d.shop.Seconds() / wall
	}
	if tot := d.busy + d.idle; tot > 0 {
		u.IdlePct = 100 * float64(d.idle) / float64(tot)
	}
	var db time.Duration
	if d.dbOK {
		db = d.db
		perReq, cores := 0.0, 0.0
		if requests > 0 {
			perReq = float64(db.Microseconds()) / float64(requests)
		}
		if wall > 0 {
			cores = db.Seconds() / wall
		}
		u.DBUSPerReq, u.DBCores = &perReq, &cores
	}
	if wall > 0 {
		u.OtherCores = max(0, (d.busy-d.shop-d.self-db).Seconds()/wall)
		u.StealCores = d.steal.Seconds() / wall
	}
	return u
}
