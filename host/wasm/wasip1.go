package wasm

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"io/fs"
	"math"
	"path"
	"strconv"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// WASI preview 1 for engines that do not bring wazero's (wasmtime): the
// sandbox of sdk/ABI.md section 7, written to answer every call exactly as
// wazero's wasi_snapshot_preview1 answers it under the wazero engine's
// module config (no filesystem, no preopens, no environment, no arguments,
// stdin empty, stdout and stderr to the instance's writers, real clocks,
// crypto randomness, sleeps cut short at the call's deadline), so that a
// guest sees the same WASI whichever engine runs it. TestWASIParity runs
// one probe of every function on both engines and compares the answers.
//
// The descriptors are wazero's three stdio files: no descriptor can be
// opened, only closed. What wazero answers for them follows from its file
// types: each reports a (block) device of size 0; stdin reads nothing
// (EOF) and cannot be written; stdout and stderr write and cannot be read;
// none seeks (ENOSYS), truncates, renumbers (ENOTSUP) or is a directory.
//
// One deliberate difference: fd_filestat_set_times on a stdio descriptor
// makes wazero dereference a nil filesystem (the guest traps); here it
// answers ENOSYS.

// wasiEnv is the WASI state of one instance.
type wasiEnv struct {
	stdout, stderr io.Writer      // nil discards
	sleep          func(ns int64) // a guest's sleep, cut short at the deadline
	closed         [3]bool        // stdio descriptors the guest closed
}

// open reports whether fd is an open descriptor.
func (w *wasiEnv) open(fd int32) bool { return fd >= 0 && fd < 3 && !w.closed[fd] }

// wasiExit is the panic of proc_exit: the engine ends the call with it.
type wasiExit uint32

func (e wasiExit) Error() string {
	return "module closed with exit_code(" + strconv.FormatUint(uint64(e), 10) + ")"
}

// WASI errno values (wasi_snapshot_preview1 errno).
const (
	errnoSuccess     = 0
	errnoBadf        = 8
	errnoFault       = 21
	errnoInval       = 28
	errnoIo          = 29
	errnoNametoolong = 37
	errnoNosys       = 52
	errnoNotdir      = 54
	errnoNotsup      = 58
	errnoPerm        = 63
)

// File types, flags and rights wazero reports for its stdio descriptors.
const (
	wasiFiletypeBlockDevice = 1
	// fd_datasync, fd_read, fd_seek, fd_fdstat_set_flags, fd_sync, fd_tell,
	// fd_write, fd_advise, fd_allocate, fd_filestat_get,
	// fd_filestat_set_size, fd_filestat_set_times, poll_fd_readwrite.
	wasiFileRights = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<21 | 1<<22 | 1<<23 | 1<<27

	wasiFdflagDsync    = 1 << 1
	wasiFdflagNonblock = 1 << 2
	wasiFdflagRsync    = 1 << 3
	wasiFdflagSync     = 1 << 4

	wasiFstAtim, wasiFstAtimNow, wasiFstMtim, wasiFstMtimNow = 1, 2, 4, 8
)

// wasiFunc is one function of wasi_snapshot_preview1. fn reads its
// parameters from stack and writes its result (an errno; proc_exit has
// none) to stack[0]. It may panic (proc_exit with wasiExit, a guest
// buffer the Go code indexes past): the engine turns a panic into a trap.
type wasiFunc struct {
	name            string
	params, results []sdkabi.ValueType
	fn              func(w *wasiEnv, m abi.Memory, stack []uint64)
}

var (
	wI32 = sdkabi.I32
	wI64 = sdkabi.I64
)

// errnoFn adapts a function that returns an errno.
func errnoFn(name string, params []sdkabi.ValueType, fn func(w *wasiEnv, m abi.Memory, s []uint64) uint32) wasiFunc {
	return wasiFunc{name: name, params: params, results: []sdkabi.ValueType{wI32},
		fn: func(w *wasiEnv, m abi.Memory, s []uint64) { s[0] = uint64(fn(w, m, s)) }}
}

func wtypes(ts ...sdkabi.ValueType) []sdkabi.ValueType { return ts }

// wasip1Funcs is every function of wasi_snapshot_preview1, in wazero's
// order.
var wasip1Funcs = []wasiFunc{
	errnoFn("args_get", wtypes(wI32, wI32), emptyListGet),
	errnoFn("args_sizes_get", wtypes(wI32, wI32), emptyListSizes),
	errnoFn("environ_get", wtypes(wI32, wI32), emptyListGet),
	errnoFn("environ_sizes_get", wtypes(wI32, wI32), emptyListSizes),
	errnoFn("clock_res_get", wtypes(wI32, wI32), clockResGet),
	errnoFn("clock_time_get", wtypes(wI32, wI64, wI32), clockTimeGet),
	errnoFn("fd_advise", wtypes(wI32, wI64, wI64, wI32), fdAdvise),
	errnoFn("fd_allocate", wtypes(wI32, wI64, wI64), fdAllocate),
	errnoFn("fd_close", wtypes(wI32), fdClose),
	errnoFn("fd_datasync", wtypes(wI32), fdSync),
	errnoFn("fd_fdstat_get", wtypes(wI32, wI32), fdFdstatGet),
	errnoFn("fd_fdstat_set_flags", wtypes(wI32, wI32), fdFdstatSetFlags),
	errnoFn("fd_fdstat_set_rights", wtypes(wI32, wI64, wI64), nosys),
	errnoFn("fd_filestat_get", wtypes(wI32, wI32), fdFilestatGet),
	errnoFn("fd_filestat_set_size", wtypes(wI32, wI64), fdNosys),
	errnoFn("fd_filestat_set_times", wtypes(wI32, wI64, wI64, wI32), fdFilestatSetTimes),
	errnoFn("fd_pread", wtypes(wI32, wI32, wI32, wI64, wI32), fdPread),
	errnoFn("fd_prestat_get", wtypes(wI32, wI32), fdPrestatGet),
	errnoFn("fd_prestat_dir_name", wtypes(wI32, wI32, wI32), fdPrestatDirName),
	errnoFn("fd_pwrite", wtypes(wI32, wI32, wI32, wI64, wI32), fdPwrite),
	errnoFn("fd_read", wtypes(wI32, wI32, wI32, wI32), fdRead),
	errnoFn("fd_readdir", wtypes(wI32, wI32, wI32, wI64, wI32), fdReaddir),
	errnoFn("fd_renumber", wtypes(wI32, wI32), fdRenumber),
	errnoFn("fd_seek", wtypes(wI32, wI64, wI32, wI32), fdNosys),
	errnoFn("fd_sync", wtypes(wI32), fdSync),
	errnoFn("fd_tell", wtypes(wI32, wI32), fdNosys),
	errnoFn("fd_write", wtypes(wI32, wI32, wI32, wI32), fdWrite),
	errnoFn("path_create_directory", wtypes(wI32, wI32, wI32), pathAt(0, 1, 2)),
	errnoFn("path_filestat_get", wtypes(wI32, wI32, wI32, wI32, wI32), pathAt(0, 2, 3)),
	errnoFn("path_filestat_set_times", wtypes(wI32, wI32, wI32, wI32, wI64, wI64, wI32), pathFilestatSetTimes),
	errnoFn("path_link", wtypes(wI32, wI32, wI32, wI32, wI32, wI32, wI32), pathAt(0, 2, 3)),
	errnoFn("path_open", wtypes(wI32, wI32, wI32, wI32, wI32, wI64, wI64, wI32, wI32), pathAt(0, 2, 3)),
	errnoFn("path_readlink", wtypes(wI32, wI32, wI32, wI32, wI32, wI32), pathReadlink),
	errnoFn("path_remove_directory", wtypes(wI32, wI32, wI32), pathAt(0, 1, 2)),
	errnoFn("path_rename", wtypes(wI32, wI32, wI32, wI32, wI32, wI32), pathAt(0, 1, 2)),
	errnoFn("path_symlink", wtypes(wI32, wI32, wI32, wI32, wI32), pathSymlink),
	errnoFn("path_unlink_file", wtypes(wI32, wI32, wI32), pathAt(0, 1, 2)),
	errnoFn("poll_oneoff", wtypes(wI32, wI32, wI32, wI32), pollOneoff),
	{name: "proc_exit", params: wtypes(wI32), fn: func(_ *wasiEnv, _ abi.Memory, s []uint64) { panic(wasiExit(uint32(s[0]))) }},
	errnoFn("proc_raise", wtypes(wI32), nosys),
	errnoFn("sched_yield", nil, func(*wasiEnv, abi.Memory, []uint64) uint32 { return errnoSuccess }),
	errnoFn("random_get", wtypes(wI32, wI32), randomGet),
	errnoFn("sock_accept", wtypes(wI32, wI32, wI32), sockBadf),
	errnoFn("sock_recv", wtypes(wI32, wI32, wI32, wI32, wI32, wI32), sockBadf),
	errnoFn("sock_send", wtypes(wI32, wI32, wI32, wI32, wI32), sockSend),
	errnoFn("sock_shutdown", wtypes(wI32, wI32), sockBadf),
}

// Guest memory, with wazero's bounds: a range is valid when it ends within
// the memory (an empty one at the very end included).

func wread(m abi.Memory, off, n uint32) ([]byte, bool) {
	if m == nil {
		panic("WASI function called by a module without memory")
	}
	return m.Read(off, n)
}

func wput32(m abi.Memory, off, v uint32) bool {
	b, ok := wread(m, off, 4)
	if ok {
		binary.LittleEndian.PutUint32(b, v)
	}
	return ok
}

func wput64(m abi.Memory, off uint32, v uint64) bool {
	b, ok := wread(m, off, 8)
	if ok {
		binary.LittleEndian.PutUint64(b, v)
	}
	return ok
}

func nosys(*wasiEnv, abi.Memory, []uint64) uint32 { return errnoNosys }

// emptyListGet is args_get and environ_get of an empty list: nothing to
// write, but both buffers must lie in memory.
func emptyListGet(_ *wasiEnv, m abi.Memory, s []uint64) uint32 {
	if _, ok := wread(m, uint32(s[0]), 0); !ok {
		return errnoFault
	}
	if _, ok := wread(m, uint32(s[1]), 0); !ok {
		return errnoFault
	}
	return errnoSuccess
}

// emptyListSizes is args_sizes_get and environ_sizes_get: none.
func emptyListSizes(_ *wasiEnv, m abi.Memory, s []uint64) uint32 {
	if !wput32(m, uint32(s[0]), 0) || !wput32(m, uint32(s[1]), 0) {
		return errnoFault
	}
	return errnoSuccess
}

func clockResGet(_ *wasiEnv, m abi.Memory, s []uint64) uint32 {
	var res uint64
	switch uint32(s[0]) {
	case 0: // realtime: microseconds, as wazero's WithSysWalltime
		res = 1000
	case 1: // monotonic
		res = 1
	default:
		return errnoInval
	}
	if !wput64(m, uint32(s[1]), res) {
		return errnoFault
	}
	return errnoSuccess
}

func clockTimeGet(_ *wasiEnv, m abi.Memory, s []uint64) uint32 {
	var t int64
	switch uint32(s[0]) {
	case 0:
		t = time.Now().UnixNano()
	case 1:
		t = mono() + 1 // never 0
	default:
		return errnoInval
	}
	if !wput64(m, uint32(s[2]), uint64(t)) {
		return errnoFault
	}
	return errnoSuccess
}

func fdAdvise(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	if byte(s[3]) > 5 { // normal, sequential, random, willneed, dontneed, noreuse
		return errnoInval
	}
	return errnoSuccess
}

func fdAllocate(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	switch tail := int64(s[1] + s[2]); {
	case tail < 0:
		return errnoInval
	case tail == 0: // the size (0) is already enough
		return errnoSuccess
	}
	return errnoNosys // a device cannot be truncated
}

func fdClose(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	fd := int32(s[0])
	if !w.open(fd) {
		return errnoBadf
	}
	w.closed[fd] = true
	return errnoSuccess
}

// fdSync is fd_sync and fd_datasync: nothing to flush.
func fdSync(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	return errnoSuccess
}

// fdNosys is what a stdio descriptor cannot do: seek, tell, truncate.
func fdNosys(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	return errnoNosys
}

func fdFdstatGet(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	b, ok := wread(m, uint32(s[1]), 24)
	if !ok {
		return errnoFault
	}
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	clear(b)
	binary.LittleEndian.PutUint16(b[0:], wasiFiletypeBlockDevice)
	binary.LittleEndian.PutUint64(b[8:], wasiFileRights)
	return errnoSuccess
}

func fdFdstatSetFlags(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	flags := uint16(s[1])
	if flags&(wasiFdflagDsync|wasiFdflagRsync|wasiFdflagSync) != 0 {
		return errnoInval
	}
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	if flags&wasiFdflagNonblock != 0 {
		return errnoNosys
	}
	return errnoSuccess
}

func fdFilestatGet(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	b, ok := wread(m, uint32(s[1]), 64)
	if !ok {
		return errnoFault
	}
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	clear(b)
	binary.LittleEndian.PutUint64(b[16:], wasiFiletypeBlockDevice)
	binary.LittleEndian.PutUint64(b[24:], 1) // nlink
	return errnoSuccess
}

// wasiTimes checks the fst_flags of the set_times functions.
func wasiTimes(flags uint16) uint32 {
	if flags&wasiFstAtim != 0 && flags&wasiFstAtimNow != 0 || flags&wasiFstMtim != 0 && flags&wasiFstMtimNow != 0 {
		return errnoInval
	}
	return errnoSuccess
}

func fdFilestatSetTimes(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	if e := wasiTimes(uint16(s[3])); e != 0 {
		return e
	}
	return errnoNosys
}

func fdPrestatGet(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	// wazero's stdio descriptors count as preopens with an empty name.
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	if !wput64(m, uint32(s[1]), 0) {
		return errnoFault
	}
	return errnoSuccess
}

func fdPrestatDirName(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	if uint32(s[2]) > 0 { // the name is empty
		return errnoNametoolong
	}
	if _, ok := wread(m, uint32(s[1]), 0); !ok {
		return errnoFault
	}
	return errnoSuccess
}

// iovecs calls each on the (ptr, len) pairs of an iovec array, stopping
// at the first errno or when each says so.
func iovecs(m abi.Memory, iovs, count uint32, each func(b []byte) (n int, stop bool, errno uint32)) (uint32, uint32) {
	list, ok := wread(m, iovs, count<<3)
	if !ok {
		return 0, errnoFault
	}
	var total uint32
	for i := 0; i+8 <= len(list); i += 8 {
		b, ok := wread(m, binary.LittleEndian.Uint32(list[i:]), binary.LittleEndian.Uint32(list[i+4:]))
		if !ok {
			return 0, errnoFault
		}
		n, stop, errno := each(b)
		total += uint32(n)
		if errno != 0 {
			return 0, errno
		}
		if stop {
			break
		}
	}
	return total, errnoSuccess
}

func fdRead(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	fd := int32(s[0])
	if !w.open(fd) {
		return errnoBadf
	}
	list, ok := wread(m, uint32(s[1]), uint32(s[2])<<3)
	if !ok {
		return errnoFault
	}
	for i := 0; i+8 <= len(list); i += 8 {
		l := binary.LittleEndian.Uint32(list[i+4:])
		if l == 0 {
			continue
		}
		if _, ok := wread(m, binary.LittleEndian.Uint32(list[i:]), l); !ok {
			return errnoFault
		}
		if fd != 0 { // stdout and stderr cannot be read
			return errnoBadf
		}
		break // stdin is empty: end of file
	}
	if !wput32(m, uint32(s[3]), 0) {
		return errnoFault
	}
	return errnoSuccess
}

func fdPread(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	list, ok := wread(m, uint32(s[1]), uint32(s[2])<<3)
	if !ok {
		return errnoFault
	}
	for i := 0; i+8 <= len(list); i += 8 {
		l := binary.LittleEndian.Uint32(list[i+4:])
		if l == 0 {
			continue
		}
		if _, ok := wread(m, binary.LittleEndian.Uint32(list[i:]), l); !ok {
			return errnoFault
		}
		return errnoBadf // no stdio descriptor reads at an offset
	}
	if !wput32(m, uint32(s[4]), 0) {
		return errnoFault
	}
	return errnoSuccess
}

func fdWrite(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	fd := int32(s[0])
	if !w.open(fd) {
		return errnoBadf
	}
	var out io.Writer
	switch fd {
	case 1:
		out = w.stdout
	case 2:
		out = w.stderr
	}
	n, errno := iovecs(m, uint32(s[1]), uint32(s[2]), func(b []byte) (int, bool, uint32) {
		switch {
		case fd == 0:
			return 0, true, errnoBadf // stdin cannot be written
		case out == nil:
			return len(b), false, 0
		}
		n, err := out.Write(b)
		if err != nil {
			return n, true, errnoIo
		}
		return n, false, 0
	})
	if errno != 0 {
		return errno
	}
	if !wput32(m, uint32(s[3]), n) {
		return errnoFault
	}
	return errnoSuccess
}

func fdPwrite(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) {
		return errnoBadf
	}
	n, errno := iovecs(m, uint32(s[1]), uint32(s[2]), func(b []byte) (int, bool, uint32) {
		if len(b) == 0 {
			return 0, false, 0
		}
		return 0, true, errnoBadf // no stdio descriptor writes at an offset
	})
	if errno != 0 {
		return errno
	}
	if !wput32(m, uint32(s[4]), n) {
		return errnoFault
	}
	return errnoSuccess
}

func fdReaddir(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if uint32(s[2]) < 24 { // the size of a dirent
		return errnoInval
	}
	// A bad descriptor, or one that is not a directory: both EBADF.
	return errnoBadf
}

func fdRenumber(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[0])) || int32(s[1]) < 0 {
		return errnoBadf
	}
	return errnoNotsup // stdio descriptors are preopens
}

// atPath is wazero's resolution of (fd, path) for the path_* functions:
// the path must be readable and relative without "..", and fd an open
// directory, which no descriptor is.
func atPath(w *wasiEnv, m abi.Memory, fd int32, ptr, n uint32) uint32 {
	b, ok := wread(m, ptr, n)
	if !ok {
		return errnoFault
	}
	if !fs.ValidPath(path.Clean(string(b))) {
		return errnoPerm
	}
	if !w.open(fd) {
		return errnoBadf
	}
	return errnoNotdir
}

// pathAt is a path_* function that fails in its first atPath: the
// parameters at fd, ptr and n.
func pathAt(fd, ptr, n int) func(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	return func(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
		return atPath(w, m, int32(s[fd]), uint32(s[ptr]), uint32(s[n]))
	}
}

func pathFilestatSetTimes(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	if e := wasiTimes(uint16(s[6])); e != 0 {
		return e
	}
	return atPath(w, m, int32(s[0]), uint32(s[2]), uint32(s[3]))
}

func pathReadlink(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	if uint32(s[2]) == 0 || uint32(s[4]) == 0 {
		return errnoInval
	}
	return atPath(w, m, int32(s[0]), uint32(s[1]), uint32(s[2]))
}

func pathSymlink(w *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if !w.open(int32(s[2])) {
		return errnoBadf
	}
	return errnoNotdir
}

// pollOneoff is wazero's poll_oneoff: clock subscriptions sleep (relative
// timeouts only), stdin is always ready (with nothing), a write
// subscription is not supported.
func pollOneoff(w *wasiEnv, m abi.Memory, s []uint64) uint32 {
	in, out, nsubs, resultNevents := uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[3])
	if nsubs == 0 {
		return errnoInval
	}
	inBuf, ok := wread(m, in, nsubs*48)
	if !ok {
		return errnoFault
	}
	outBuf, ok := wread(m, out, nsubs*32)
	clear(outBuf)
	if !ok {
		return errnoFault
	}
	if !wput32(m, resultNevents, nsubs) {
		return errnoFault
	}
	event := func(at uint32, sub []byte, errno byte) {
		e := outBuf[at*32:]
		copy(e, sub[:8]) // userdata
		e[8], e[9] = errno, 0
		binary.LittleEndian.PutUint32(e[10:], uint32(sub[8])) // the event type
	}
	timeout := int64(math.MaxInt64)
	var nevents uint32
	var blocked []uint32 // read subscriptions waiting for stdin
	for i := range nsubs {
		sub := inBuf[i*48:]
		arg := sub[16:]
		switch sub[8] {
		case 0: // clock
			switch binary.LittleEndian.Uint16(arg[24:32]) {
			case 0: // relative
			case 1: // absolute: not supported
				return errnoNotsup
			default:
				return errnoInval
			}
			if t := int64(binary.LittleEndian.Uint64(arg[8:16])); t < timeout {
				timeout = t
			}
			event(nevents, sub, 0)
			nevents++
		case 1: // fd_read
			fd := int32(binary.LittleEndian.Uint32(arg))
			switch {
			case fd < 0:
				return errnoBadf
			case !w.open(fd):
				event(nevents, sub, errnoBadf)
				nevents++
			default:
				blocked = append(blocked, i)
			}
		case 2: // fd_write
			fd := int32(binary.LittleEndian.Uint32(arg))
			if fd < 0 {
				return errnoBadf
			}
			errno := byte(errnoBadf)
			if w.open(fd) {
				errno = errnoNotsup
			}
			event(nevents, sub, errno)
			nevents++
		default:
			return errnoInval
		}
	}
	if nevents == nsubs {
		if timeout > 0 && w.sleep != nil {
			w.sleep(timeout)
		}
		return errnoSuccess
	}
	if !w.open(0) {
		return errnoBadf
	}
	for _, i := range blocked { // stdin is ready: it has nothing to read
		event(nevents, inBuf[i*48:], 0)
		nevents++
	}
	return errnoSuccess
}

func randomGet(_ *wasiEnv, m abi.Memory, s []uint64) uint32 {
	b, ok := wread(m, uint32(s[0]), uint32(s[1]))
	if !ok {
		return errnoFault
	}
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return errnoIo
	}
	return errnoSuccess
}

// sockBadf is sock_accept, sock_recv and sock_shutdown: no descriptor is a
// socket.
func sockBadf(*wasiEnv, abi.Memory, []uint64) uint32 { return errnoBadf }

func sockSend(_ *wasiEnv, _ abi.Memory, s []uint64) uint32 {
	if uint32(s[3]) != 0 { // si_flags
		return errnoNotsup
	}
	return errnoBadf
}
