package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/wasm"
)

const pluginUsage = `usage: wasmgate plugin check [flags] FILE.wasm...

Checks plugin modules offline, as the gateway would load them: the ABI
(sdk/ABI.md: version marker, hooks, imports, memory, reactor) and a real
compile with the engine a plugin would run on (-engine: wazero, the
default, or wasmtime). Prints each module's imports, exports, ABI
version, hooks, memory limits and engine; exits 0 when every module would
be accepted, 1 when one would be rejected (the reason names the symbol).

Flags:
`

// pluginCmd runs `wasmgate plugin SUBCOMMAND`.
func pluginCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: wasmgate plugin check|new|build|run|test|snapshot ...\n")
		return 2
	}
	switch args[0] {
	case "check":
		return pluginCheck(args[1:], stdout, stderr)
	case "new":
		return pluginNew(args[1:], stdout, stderr)
	case "build":
		return pluginBuild(args[1:], stdout, stderr)
	case "run":
		return pluginRun(args[1:], stdout, stderr)
	case "test":
		return pluginTest(args[1:], stdout, stderr)
	case "snapshot":
		return pluginSnapshot(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "wasmgate plugin: unknown subcommand %q (have: check, new, build, run, test, snapshot)\n", args[0])
		return 2
	}
}

// checkOptions are the flags of `plugin check`.
type checkOptions struct {
	config      []byte // nil: no instantiation
	engine      wasm.EngineKind
	interpreter bool
	pages       uint32
}

func pluginCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, pluginUsage)
		fs.PrintDefaults()
	}
	var o checkOptions
	config := fs.String("config", "", "also instantiate the module and run _initialize and on_init with this JSON config (@FILE reads it from a file)")
	engine := fs.String("engine", string(wasm.EngineWazero), "the engine to compile with, as a plugin's engine: wazero or wasmtime (wasmtime needs a build with cgo)")
	fs.BoolVar(&o.interpreter, "interpreter", false, "compile with wazero's interpreter instead of its compiler")
	pages := fs.Uint("memory-pages", wasm.DefaultMemoryPages, "memory cap in 64 KiB pages, as the plugin's limits.memory_pages")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "usage: wasmgate plugin check [flags] FILE.wasm...\n")
		return 2
	}
	if *pages == 0 || *pages > 1<<16 {
		fmt.Fprintf(stderr, "wasmgate plugin check: -memory-pages %d: want 1 to 65536\n", *pages)
		return 2
	}
	o.pages = uint32(*pages)
	kind, err := wasm.ParseEngine(*engine)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "wasmgate plugin check: -engine: %v\n", err)
		return 2
	case kind == wasm.EngineWasmtime && o.interpreter:
		fmt.Fprintf(stderr, "wasmgate plugin check: -interpreter is a wazero mode, not for -engine wasmtime\n")
		return 2
	case kind == wasm.EngineWasmtime && !wasm.WasmtimeAvailable():
		_, err := wasm.NewWasmtimeEngine(wasm.WasmtimeOptions{})
		fmt.Fprintf(stderr, "wasmgate plugin check: -engine wasmtime: %v\n", err)
		return 2
	}
	o.engine = kind
	if *config != "" {
		c := []byte(*config)
		if name, ok := strings.CutPrefix(*config, "@"); ok {
			var err error
			if c, err = os.ReadFile(name); err != nil {
				fmt.Fprintf(stderr, "wasmgate plugin check: -config: %v\n", err)
				return 2
			}
		}
		if !json.Valid(c) {
			fmt.Fprintf(stderr, "wasmgate plugin check: -config is not valid JSON\n")
			return 2
		}
		o.config = c
	}

	r, err := wasm.NewRuntime(wasm.Options{DefaultEngine: o.engine, Interpreter: o.interpreter,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "wasmgate plugin check: %v\n", err)
		return 1
	}
	defer r.Close(context.Background())
	code := 0
	for i, path := range fs.Args() {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if !checkModule(r, path, o, stdout, stderr) {
			code = 1
		}
	}
	return code
}

// checkModule checks one file, prints what it found to stdout and the
// verdict (a rejection on stderr), and reports whether the gateway would
// accept it.
func checkModule(r *wasm.Runtime, path string, o checkOptions, stdout, stderr io.Writer) bool {
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	reject := func(problems ...string) bool {
		fmt.Fprintf(w, "  result        rejected\n")
		w.Flush() // the details first, when both streams are one terminal
		if len(problems) == 1 {
			fmt.Fprintf(stderr, "%s: rejected: %s\n", path, problems[0])
		} else {
			fmt.Fprintf(stderr, "%s: rejected (%d problems):\n", path, len(problems))
			for _, p := range problems {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
		}
		return false
	}

	fmt.Fprintf(w, "%s\n", path)
	code, err := os.ReadFile(path)
	if err != nil {
		return reject(err.Error())
	}
	info, err := wasm.Inspect(code)
	var ferr *wasm.FormatError
	if errors.As(err, &ferr) {
		fmt.Fprintf(w, "  size          %d bytes\n  sha256        %s\n", info.Size, info.SHA256)
		return reject(ferr.Error())
	}
	printModuleInfo(w, info)
	var verr *wasm.ValidationError
	if errors.As(err, &verr) {
		return reject(verr.Problems...)
	}
	if err != nil {
		return reject(err.Error())
	}

	// A real compile, as the gateway's Load does: the engine's own
	// validation of every function body (and, on wazero, instrumentation).
	ctx := context.Background()
	name := strings.TrimSuffix(filepath.Base(path), ".wasm")
	m, err := r.Load(ctx, name, code)
	if err != nil {
		return reject(err.Error())
	}
	defer m.Release(ctx)
	loaded := m.Info()
	fmt.Fprintf(w, "  engine        %s, compiled in %s\n", loaded.Engine, roundDuration(loaded.CompileTime))
	fmt.Fprintf(w, "  interruption  %s\n", loaded.Interruption)

	mem := info.Memory
	switch {
	case mem.Min > o.pages:
		return reject(fmt.Sprintf("the module needs %d memory pages at start, over the cap of %d pages (limits.memory_pages)", mem.Min, o.pages))
	case mem.HasMax && mem.Max > o.pages && o.pages < 1<<16:
		return reject(fmt.Sprintf("the module declares a maximum of %d memory pages, over the cap of %d pages: raise limits.memory_pages or lower the module's maximum", mem.Max, o.pages))
	}

	if o.config != nil {
		start := time.Now()
		b, err := m.Bind(ctx, &abi.Env{Plugin: name, Route: "check", Config: o.config}, wasm.BindingConfig{
			Mode: wasm.ModeFresh, MemoryPages: o.pages, CallTimeout: time.Second})
		if err != nil {
			if reason, ok := wasm.ConfigRejected(err); ok {
				return reject("on_init rejected the config: " + reason)
			}
			return reject(err.Error())
		}
		d := time.Since(start)
		_ = b.Close(ctx)
		if loaded.Hooks.Has(wasm.HookInit) {
			fmt.Fprintf(w, "  on_init       accepted the config (instantiate and init in %s)\n", roundDuration(d))
		} else {
			fmt.Fprintf(w, "  on_init       none: the config is not checked (instantiated in %s)\n", roundDuration(d))
		}
	}
	fmt.Fprintf(w, "  result        ok: would be accepted\n")
	return true
}

// roundDuration keeps three significant digits or so: 1.34s, 3.91ms, 780µs.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// printModuleInfo writes the interface of a module.
func printModuleInfo(w io.Writer, info wasm.ModuleInfo) {
	fmt.Fprintf(w, "  size          %d bytes\n", info.Size)
	fmt.Fprintf(w, "  sha256        %s\n", info.SHA256)
	abiVersion := "none (no " + abi.VersionMarker + " export)"
	switch {
	case info.ABI == wasm.ABIHTTPWasm:
		abiVersion = "http-wasm (the http_handler ABI of http-wasm-host-go v0.7.0)"
	case info.ABIVersion > 0:
		abiVersion = "v" + strconv.Itoa(info.ABIVersion)
	}
	fmt.Fprintf(w, "  abi           %s\n", abiVersion)
	hooks := strings.Join(info.HookNames(), ", ")
	if hooks == "" {
		hooks = "none"
	}
	fmt.Fprintf(w, "  hooks         %s\n", hooks)
	kind := "plain module (no _initialize)"
	switch {
	case info.Command && info.ABI == wasm.ABIHTTPWasm:
		kind = "WASI command (_start runs once per instance, as http-wasm hosts do)"
	case info.Command:
		kind = "WASI command (exports _start)"
	case info.Reactor:
		kind = "WASI reactor (_initialize runs before on_init)"
	}
	fmt.Fprintf(w, "  kind          %s\n", kind)
	fmt.Fprintf(w, "  memory        %s\n", formatLimits(info.Memory))
	fmt.Fprintf(w, "  imports       %d\n", len(info.Imports))
	width := 0
	for _, im := range info.Imports {
		width = max(width, len(im.Module)+1+len(im.Name))
	}
	for _, im := range info.Imports {
		fmt.Fprintf(w, "    %-*s  %s\n", width, im.Module+"."+im.Name, externType(im.Kind, im.Type))
	}
	fmt.Fprintf(w, "  exports       %d\n", len(info.Exports))
	width = 0
	for _, e := range info.Exports {
		width = max(width, len(e.Name))
	}
	for _, e := range info.Exports {
		fmt.Fprintf(w, "    %-*s  %s\n", width, e.Name, externType(e.Kind, e.Type))
	}
}

// externType renders an import's or export's type: a function signature,
// else its kind.
func externType(k wasm.ExternKind, sig wasm.Signature) string {
	if k == wasm.ExternFunc {
		return "func " + sig.String()
	}
	return k.String()
}

// formatLimits renders memory limits: "min 1 page (64 KiB), max 16 pages (1 MiB)".
func formatLimits(m wasm.MemoryLimits) string {
	pages := func(n uint32) string {
		unit := "pages"
		if n == 1 {
			unit = "page"
		}
		kib := uint64(n) * 64
		size := strconv.FormatUint(kib, 10) + " KiB"
		if kib >= 1024 && kib%1024 == 0 {
			size = strconv.FormatUint(kib/1024, 10) + " MiB"
		}
		return strconv.FormatUint(uint64(n), 10) + " " + unit + " (" + size + ")"
	}
	s := "min " + pages(m.Min)
	if m.HasMax {
		s += ", max " + pages(m.Max)
	} else {
		s += ", no max"
	}
	if m.Is64 {
		s += ", 64-bit"
	}
	if m.Shared {
		s += ", shared"
	}
	return s
}
