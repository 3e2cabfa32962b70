// Command wasmgate is the gateway binary: it serves, validates configs,
// prints the config schema and runs the benchmarks.
//
//	wasmgate serve --config FILE
//	wasmgate config validate FILE
//	wasmgate config schema
//	wasmgate bench proxy [flags]
//	wasmgate bench plugins [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wasmgate/wasmgate/bench"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/server"
)

const usage = `wasmgate: a serverless edge gateway on WebAssembly

Usage:
  wasmgate serve --config FILE       run the gateway
  wasmgate config validate FILE      check a config; prints FILE:LINE:COL: errors
  wasmgate config schema             print the JSON Schema of the config format
  wasmgate bench proxy [flags]       gateway vs direct upstream vs nginx (see -h)
  wasmgate bench plugins [flags]     plugin overhead, cold starts, pooled vs fresh (see -h)
  wasmgate bench coldstart [flags]   compile, instantiate, first and warm request per plugin (see -h)
  wasmgate plugin check FILE.wasm    validate a module against the ABI offline
  wasmgate version

Environment:
  WASMGATE_ADMIN_TOKEN   admin API bearer token (wins over admin.token)
`

// version is set by the linker (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "bench":
		return benchCmd(args[1:], stdout, stderr)
	case "plugin":
		return pluginCmd(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "wasmgate", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "wasmgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "wasmgate.yaml", "config file")
	logLevel := fs.String("log-level", "", "process log level (debug, info, warn, error); default from the config")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := server.New(server.Options{
		ConfigPath: *cfgPath,
		Log:        log,
		AdminToken: os.Getenv("WASMGATE_ADMIN_TOKEN"),
	})
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	lvl := *logLevel
	if lvl == "" {
		lvl = s.LogLevel()
	}
	if err := level.UnmarshalText([]byte(lvl)); err != nil {
		fmt.Fprintf(stderr, "wasmgate: bad log level %q\n", lvl)
		return 2
	}
	if token, generated := s.AdminToken(); generated {
		log.Warn("no admin token configured: generated one for this run", "admin_token", token)
	}
	// Run handles SIGTERM, SIGINT and SIGHUP itself.
	if err := s.Run(context.Background()); err != nil {
		log.Error("wasmgate stopped", "err", err)
		return 1
	}
	return 0
}

func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: wasmgate config validate FILE | wasmgate config schema\n")
		return 2
	}
	switch args[0] {
	case "validate":
		if len(args) != 2 {
			fmt.Fprint(stderr, "usage: wasmgate config validate FILE\n")
			return 2
		}
		cfg, _, err := server.Check(args[1], os.Getenv("WASMGATE_ADMIN_TOKEN"))
		if err != nil {
			printConfigError(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (%d routes, %d upstreams)\n", args[1], len(cfg.Routes), len(cfg.Upstreams))
		return 0
	case "schema":
		schema, err := config.Schema()
		if err != nil {
			fmt.Fprintf(stderr, "wasmgate: %v\n", err)
			return 1
		}
		stdout.Write(schema)
		fmt.Fprintln(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "wasmgate config: unknown subcommand %q\n", args[0])
		return 2
	}
}

// printConfigError prints one error per line (FILE:LINE:COL: message).
func printConfigError(w io.Writer, err error) {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		fmt.Fprintf(w, "%d error(s)\n", len(list))
		return
	}
	fmt.Fprintf(w, "wasmgate: %v\n", err)
}

func benchCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: wasmgate bench proxy|plugins|coldstart [flags]\n")
		return 2
	}
	switch args[0] {
	case "proxy":
		fs := flag.NewFlagSet("bench proxy", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.ProxyOptions{Progress: stderr}
		fs.DurationVar(&o.Duration, "duration", 5*time.Second, "load duration of one measurement")
		fs.IntVar(&o.Runs, "runs", 3, "rounds (medians are reported)")
		fs.IntVar(&o.Connections, "connections", 64, "concurrent connections (wrk -c)")
		fs.StringVar(&o.OutDir, "out", "bench/results", "where reports are written")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "wasmgate: %v\n", err)
			return 1
		}
		o.Gateway = exe
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if _, err := bench.RunProxy(ctx, o, stdout); err != nil {
			fmt.Fprintf(stderr, "wasmgate bench proxy: %v\n", err)
			return 1
		}
		return 0
	case "plugins":
		fs := flag.NewFlagSet("bench plugins", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.PluginsOptions{Progress: stderr}
		o.RegisterFlags(fs)
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "wasmgate: %v\n", err)
			return 1
		}
		o.Gateway = exe
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if _, err := bench.RunPlugins(ctx, o, stdout); err != nil {
			fmt.Fprintf(stderr, "wasmgate bench plugins: %v\n", err)
			return 1
		}
		return 0
	case "upstream": // internal: the benchmark's upstream process
		fs := flag.NewFlagSet("bench upstream", flag.ContinueOnError)
		fs.SetOutput(stderr)
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := bench.ServeUpstream(ctx, *addr); err != nil {
			fmt.Fprintf(stderr, "wasmgate bench upstream: %v\n", err)
			return 1
		}
		return 0
	case "coldstart":
		return bench.ColdstartCommand(args[1:], stdout, stderr)
	case "bare-proxy": // internal: the benchmark's floor, a bare fasthttp proxy
		fs := flag.NewFlagSet("bench bare-proxy", flag.ContinueOnError)
		fs.SetOutput(stderr)
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		upstream := fs.String("upstream", "", "upstream host:port")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := bench.ServeBareProxy(ctx, *addr, *upstream); err != nil {
			fmt.Fprintf(stderr, "wasmgate bench bare-proxy: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "wasmgate bench: unknown benchmark %q (have: %s)\n", args[0], strings.Join([]string{"proxy", "plugins", "coldstart"}, ", "))
		return 2
	}
}
