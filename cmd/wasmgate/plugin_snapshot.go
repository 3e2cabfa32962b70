package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wasmgate/wasmgate/host/wasm"
)

const snapshotUsage = `usage: wasmgate plugin snapshot [flags] IN.wasm OUT.wasm

Pre-initializes a WASI reactor plugin (a Go plugin, say) with Wizer: runs
its _initialize once, at build time, and writes a module whose memory
already holds the result, so that each instance starts where _initialize
left off. A Go plugin's runtime and package initialisation is most of its
cold start; a snapshot makes mode: fresh affordable.

During _initialize the wasmgate host functions answer NOT_ALLOWED (what
it logs is not kept) and WASI gives real clocks and randomness, which the
snapshot then holds: every instance starts with the same random state
(the Go runtime's hash seeds, say). crypto/rand still reads fresh
randomness at each call.

Wizer is found with -wizer, $WIZER, on PATH, or in bin/tools (make tools);
install it with:
    npm install -g ` + wasm.WizerPackage + `

Flags:
`

func pluginSnapshot(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, snapshotUsage)
		fs.PrintDefaults()
	}
	wizerFlag := fs.String("wizer", "", "the wizer binary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprint(stderr, "usage: wasmgate plugin snapshot [flags] IN.wasm OUT.wasm\n")
		return 2
	}
	in, out := fs.Arg(0), fs.Arg(1)
	if err := wasm.Snapshot(*wizerFlag, in, out); err != nil {
		fmt.Fprintf(stderr, "wasmgate plugin snapshot: %v\n", err)
		return 1
	}
	before, _ := os.Stat(in)
	after, _ := os.Stat(out)
	fmt.Fprintf(stdout, "%s: pre-initialized %s (%d bytes, was %d)\n", out, in, after.Size(), before.Size())
	return 0
}
