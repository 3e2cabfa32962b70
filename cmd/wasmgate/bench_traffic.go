package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/wasmgate/wasmgate/bench"
)

// benchTraffic binds `wasmgate bench traffic`'s flags to fs and returns the
// run: the CPU cost of a sticky split and of shadow traffic, each as a ratio
// to a plain route of the same gateway (bench.RunTraffic).
func benchTraffic(fs *flag.FlagSet, stdout, stderr io.Writer) func(context.Context) error {
	o := bench.TrafficOptions{LoadOptions: bench.LoadOptions{Progress: stderr}}
	o.RegisterFlags(fs)
	return func(ctx context.Context) (err error) {
		if o.Gateway, err = os.Executable(); err == nil {
			_, err = bench.RunTraffic(ctx, o, stdout)
		}
		return err
	}
}
