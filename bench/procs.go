package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a long-running child (upstream, gateway, nginx) started in its own
// process group, so that stopping it also stops whatever it forked (nginx's
// worker) and a terminal's Ctrl-C reaches only the harness, which then stops
// its children in order.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error // Wait's result; read only after done is closed
}

// startProc starts argv with env (nil: the harness's environment).
func startProc(name string, argv, env []string) (*proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("%s: empty command", name)
	}
	p := &proc{name: name, out: newTailBuffer(8 << 10), done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// A backstop for a harness killed with SIGKILL, which runs no
		// deferred cleanup: the child goes with it.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the child's process id, which is also its process group id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes an unexpected exit, with the tail of the child's output.
func (p *proc) exitError() error {
	<-p.done
	return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.err, p.out.String())
}

// stop ends the child's whole process group: SIGTERM, a grace period, then
// SIGKILL. The group is signalled even when the leader has already exited,
// because its children (an nginx worker) may outlive it.
func (p *proc) stop() {
	pgid := p.pid()
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
}

// tailBuffer keeps the last max bytes written to it: enough of a child's
// output to explain a failure, bounded however chatty the child is.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

// Write implements io.Writer.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// procStat is the part of /proc/<pid>/stat the harness uses.
type procStat struct {
	ppid         int
	utime, stime uint64 // clock ticks, all threads of the process
}

// parseProcStat parses the content of /proc/<pid>/stat. The command name
// (field 2) is in parentheses and may itself contain spaces and parentheses,
// so fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	var st procStat
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, errors.New("proc stat: no ')' after the command name")
	}
	// After ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return st, fmt.Errorf("proc stat: ppid %q: %w", f[1], err)
	}
	if st.utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return st, fmt.Errorf("proc stat: utime %q: %w", f[11], err)
	}
	if st.stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return st, fmt.Errorf("proc stat: stime %q: %w", f[12], err)
	}
	st.ppid = ppid
	return st, nil
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	st, err := parseProcStat(b)
	if err != nil {
		return st, fmt.Errorf("pid %d: %w", pid, err)
	}
	return st, nil
}

// procTree returns pid and all its live descendants. It reads the kernel's
// /proc/<pid>/task/<tid>/children lists and, on kernels built without them,
// falls back to scanning every process's parent id.
func procTree(pid int) ([]int, error) {
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	tree, err := procTreeChildren(pid)
	if err == nil {
		return tree, nil
	}
	return procTreeScan(pid)
}

// maxTree bounds the walk: the trees measured here have one or two processes.
const maxTree = 4096

func procTreeChildren(root int) ([]int, error) {
	tree := []int{root}
	for i := 0; i < len(tree) && len(tree) < maxTree; i++ {
		tasks, err := filepath.Glob("/proc/" + strconv.Itoa(tree[i]) + "/task/*/children")
		if err != nil {
			return nil, err
		}
		if len(tasks) == 0 {
			if i == 0 {
				return nil, fs.ErrNotExist // no children files on this kernel
			}
			continue // exited meanwhile
		}
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue // the thread exited meanwhile
			}
			for _, s := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(s); err == nil {
					tree = append(tree, c)
				}
			}
		}
	}
	return tree, nil
}

func procTreeScan(root int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("scanning /proc: %w", err)
	}
	kids := make(map[int][]int)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		kids[st.ppid] = append(kids[st.ppid], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree) && len(tree) < maxTree; i++ {
		tree = append(tree, kids[tree[i]]...)
	}
	return tree, nil
}

// treeCPUTicks returns the user+system CPU time, in clock ticks, of pid and
// its live descendants. Descendants that exit between listing and reading are
// skipped; the root must be readable.
func treeCPUTicks(pid int) (uint64, error) {
	tree, err := procTree(pid)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for i, p := range tree {
		st, err := readProcStat(p)
		if err != nil {
			if i == 0 {
				return 0, fmt.Errorf("cpu time of %d: %w", p, err)
			}
			continue
		}
		sum += st.utime + st.stime
	}
	return sum, nil
}

// clockTicks returns the kernel's USER_HZ from `getconf CLK_TCK`, or 100, the
// value on every mainstream Linux architecture, when getconf is missing.
func clockTicks() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

// parseCPUList parses a kernel CPU list such as "0-3,8,10-11" (the format of
// Cpus_allowed_list in /proc/self/status) into ascending CPU numbers.
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("cpu list: empty")
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("cpu list: bad cpu %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list: bad range %q", part)
			}
		}
		if len(cpus) > 0 && a <= cpus[len(cpus)-1] {
			return nil, fmt.Errorf("cpu list: %q is not ascending", part)
		}
		if b-a >= 1<<16 {
			return nil, fmt.Errorf("cpu list: range %q too large", part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// allowedCPUs returns the CPUs this process may run on (its affinity, which
// in a container is the cpuset, not 0..nproc-1).
func allowedCPUs() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUList(v)
		}
	}
	return nil, errors.New("no Cpus_allowed_list in /proc/self/status")
}
