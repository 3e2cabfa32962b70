package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// tools are the external programs a benchmark runs.
type tools struct {
	wrk, nginx string // nginx is "" when the benchmark does not use it
	taskset    string // "" when not available: no pinning
	// h2load (Debian's nghttp2-client) drives the HTTP/2 measurements of
	// the proxy study; "" when the benchmark does not use it.
	h2load string
}

// lookTool finds name on PATH or in the sbin directories a non-root PATH
// usually lacks (Debian installs nginx in /usr/sbin).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH or in /usr/sbin", name)
}

// findTools locates wrk, nginx (when withNginx) and taskset, installing wrk
// and nginx with apt-get when one it needs is missing.
func findTools(ctx context.Context, progress io.Writer, withNginx bool) (tools, error) {
	var t tools
	wrk, werr := lookTool("wrk")
	var nginx string
	var nerr error
	if withNginx {
		nginx, nerr = lookTool("nginx")
	}
	if werr != nil || nerr != nil {
		what := "wrk"
		if withNginx {
			what = "wrk or nginx"
		}
		fmt.Fprintf(progress, "bench: %s missing; installing with apt-get\n", what)
		if err := installTools(ctx, progress, withNginx); err != nil {
			return t, err
		}
		if wrk, werr = lookTool("wrk"); werr != nil {
			return t, fmt.Errorf("after installing: %w", werr)
		}
		if withNginx {
			if nginx, nerr = lookTool("nginx"); nerr != nil {
				return t, fmt.Errorf("after installing: %w", nerr)
			}
		}
	}
	t.wrk, t.nginx = wrk, nginx
	t.taskset, _ = lookTool("taskset")
	return t, nil
}

// installTools runs `apt-get install -y wrk nginx-light` (wrk alone without
// withNginx), with `apt-get update` first when the plain install fails (a
// fresh image has no package lists), and plain nginx when nginx-light is not
// in the archive (Debian 13 dropped the flavours).
func installTools(ctx context.Context, progress io.Writer, withNginx bool) error {
	what, hint := "wrk", "install wrk yourself (Debian/Ubuntu: apt-get install wrk)"
	pkgs := []string{"wrk"}
	var fallback []string
	if withNginx {
		what, hint = "wrk and nginx", "install wrk and nginx yourself (Debian/Ubuntu: apt-get install wrk nginx-light)"
		pkgs = append(pkgs, "nginx-light")
		fallback = []string{"wrk", "nginx"}
	}
	return aptInstall(ctx, progress, what, hint, pkgs, fallback)
}

// findH2load locates h2load, installing Debian's nghttp2-client (which
// ships it) with apt-get when it is missing.
func findH2load(ctx context.Context, progress io.Writer) (string, error) {
	if p, err := lookTool("h2load"); err == nil {
		return p, nil
	}
	fmt.Fprintf(progress, "bench: h2load missing; installing with apt-get\n")
	if err := aptInstall(ctx, progress, "h2load",
		"install h2load yourself (Debian/Ubuntu: apt-get install nghttp2-client), or pass -tls=false",
		[]string{"nghttp2-client"}, nil); err != nil {
		return "", err
	}
	p, err := lookTool("h2load")
	if err != nil {
		return "", fmt.Errorf("after installing: %w", err)
	}
	return p, nil
}

// aptInstall runs `apt-get install -y pkgs` (as root, or through sudo -n),
// with `apt-get update` first when the plain install fails (a fresh image
// has no package lists), then the fallback packages when those do not
// install either (nil: none). what and hint name the tools in errors.
func aptInstall(ctx context.Context, progress io.Writer, what, hint string, pkgs, fallback []string) error {
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return fmt.Errorf("%s: required, and apt-get is not available: %s", what, hint)
	}
	var prefix []string
	if os.Geteuid() != 0 {
		sudo, err := exec.LookPath("sudo")
		if err != nil {
			return fmt.Errorf("%s: required, and installing needs root (no sudo found): %s", what, hint)
		}
		prefix = []string{sudo, "-n"}
	}
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		argv := append(append(append([]string(nil), prefix...), apt), args...)
		fmt.Fprintf(progress, "bench: %s\n", strings.Join(argv, " "))
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out := newTailBuffer(4 << 10)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out.String())
		}
		return nil
	}
	install := append([]string{"install", "-y"}, pkgs...)
	if err := run(install...); err == nil {
		return nil
	}
	if err := run("update"); err != nil {
		return fmt.Errorf("installing %s: %w (%s)", what, err, hint)
	}
	err = run(install...)
	if err != nil && fallback != nil {
		if err2 := run(append([]string{"install", "-y"}, fallback...)...); err2 != nil {
			err = errors.Join(err, err2)
		} else {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("installing %s: %w (%s)", what, err, hint)
	}
	return nil
}

// Pinning records how the benchmark placed its processes on CPUs.
type Pinning struct {
	// Tool is "taskset", or "none" when processes were not pinned.
	Tool string `json:"tool"`
	// ProxyCPU runs the proxy under test (gateway or nginx); -1 when unpinned.
	ProxyCPU int `json:"proxy_cpu"`
	// LoadCPU runs the upstream and wrk; -1 when unpinned.
	LoadCPU int `json:"load_cpu"`
	// Note says why there is no pinning, when there is none.
	Note string `json:"note,omitempty"`
}

// String describes the pinning in one line for reports.
func (p Pinning) String() string {
	if p.Tool != "taskset" {
		return "none (" + p.Note + ")"
	}
	return fmt.Sprintf("taskset: proxy on CPU %d, upstream and wrk on CPU %d", p.ProxyCPU, p.LoadCPU)
}

// choosePinning puts the proxy on the first CPU the harness may use and the
// load (upstream and wrk) on the second, so the proxy never competes with the
// load generator for its core.
func choosePinning(taskset string) Pinning {
	none := Pinning{Tool: "none", ProxyCPU: -1, LoadCPU: -1}
	if taskset == "" {
		none.Note = "taskset not found"
		return none
	}
	cpus, err := allowedCPUs()
	if err != nil {
		none.Note = "cannot read CPU affinity: " + err.Error()
		return none
	}
	if len(cpus) < 2 {
		none.Note = "only one CPU available"
		return none
	}
	return Pinning{Tool: "taskset", ProxyCPU: cpus[0], LoadCPU: cpus[1]}
}

// wrap prefixes argv with `taskset -c cpu` when pinning is on. taskset execs
// the command, so the pid stays that of the pinned program.
func (p Pinning) wrap(taskset string, cpu int, argv []string) []string {
	if p.Tool != "taskset" || cpu < 0 {
		return argv
	}
	return append([]string{taskset, "-c", strconv.Itoa(cpu)}, argv...)
}

// MachineInfo describes where a benchmark ran, so that numbers are never
// quoted without their context.
type MachineInfo struct {
	NProc         int    `json:"nproc"`
	CPUModel      string `json:"cpu_model"`
	Kernel        string `json:"kernel"`
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	GoVersion     string `json:"go_version"`
	NginxVersion  string `json:"nginx_version,omitempty"`
	WrkVersion    string `json:"wrk_version,omitempty"`
	H2loadVersion string `json:"h2load_version,omitempty"`
	ClockTicks    int    `json:"clock_ticks"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages when the run
	// started: on a shared machine, a high value explains noisy numbers.
	LoadAvg string `json:"load_avg,omitempty"`
}

// machineInfo collects MachineInfo; tool versions only for the non-empty paths.
func machineInfo(ctx context.Context, t tools, clk int) MachineInfo {
	m := MachineInfo{
		NProc:      runtime.NumCPU(),
		CPUModel:   cpuModel(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GoVersion:  runtime.Version(),
		ClockTicks: clk,
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	if t.nginx != "" {
		m.NginxVersion = firstLine(ctx, t.nginx, "-v")
	}
	if t.wrk != "" {
		m.WrkVersion = firstLine(ctx, t.wrk, "-v")
	}
	if t.h2load != "" {
		m.H2loadVersion = firstLine(ctx, t.h2load, "--version")
	}
	return m
}

// loadAvg returns /proc/loadavg's 1, 5 and 15 minute averages, "" when
// unreadable.
func loadAvg() string {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			return strings.Join(f[:3], " ")
		}
	}
	return ""
}

// firstLine runs a version command and returns the first line it printed on
// either stream (nginx -v writes to stderr; wrk -v exits 1).
func firstLine(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// cpuModel returns the first "model name" of /proc/cpuinfo (x86), falling back
// to the fields other architectures use.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	fallback := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			return v
		case "Hardware", "Processor", "cpu", "uarch":
			if fallback == "" {
				fallback = v
			}
		}
	}
	if fallback == "" {
		return "unknown"
	}
	return fallback
}
