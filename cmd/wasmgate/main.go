// Command wasmgate is the gateway binary: it serves, validates configs,
// prints the config schema and runs the benchmarks.
//
//	wasmgate serve --config FILE
//	wasmgate config validate FILE
//	wasmgate config schema
//	wasmgate bench proxy [flags]
//	wasmgate bench plugins [flags]
//	wasmgate bench coldstart [flags]
//	wasmgate bench cache [flags]
//	wasmgate bench traffic [flags]
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

	"github.com/wasmgate/wasmgate/bench"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/fleet"
	"github.com/wasmgate/wasmgate/host/server"
)

const usage = `wasmgate: a serverless edge gateway on WebAssembly

Usage:
  wasmgate serve --config FILE [--listen ADDR] [--admin ADDR]   run the gateway
  wasmgate serve --config etcd://HOST:PORT/PREFIX   run a gateway of a fleet (config in etcd)
  wasmgate config validate FILE      check a config; prints FILE:LINE:COL: errors
  wasmgate config push FILE --to etcd://HOST:PORT/PREFIX [--revision N]
                                     validate a config and make it the fleet's, with its plugins
  wasmgate config pull etcd://HOST:PORT/PREFIX   print the fleet's config (its revision on stderr)
  wasmgate config schema             print the JSON Schema of the config format
  wasmgate bench proxy [flags]       gateway vs direct upstream vs nginx (see -h)
  wasmgate bench plugins [flags]     plugin overhead, cold starts, pooled vs fresh (see -h)
  wasmgate bench coldstart [flags]   compile, instantiate, first and warm request per plugin (see -h)
  wasmgate bench cache [flags]       cache hit ratio on Zipf traces: host/cache vs an exact LRU (see -h)
  wasmgate bench traffic [flags]     CPU cost of a sticky split and of shadow traffic vs a plain route (see -h)
  wasmgate plugin check FILE.wasm    validate a module against the ABI offline
  wasmgate plugin new [--lang L] NAME   a plugin project (go, rust, c, assemblyscript) with its tests
  wasmgate plugin build [DIR]        build a plugin project with its language's toolchain, then check it
  wasmgate plugin run FILE.wasm --request REQ.http [--config CFG] [--upstream URL]
                                     run the hooks on one request offline; print what changed
  wasmgate plugin test FILE.wasm CASES.yaml   run request/expectation cases
  wasmgate plugin snapshot IN.wasm OUT.wasm   pre-initialize a reactor plugin with Wizer
  wasmgate cert [-out DIR]           a development CA and server certificate (the demo's HTTPS)
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
	case "cert":
		return certCmd(args[1:], stdout, stderr)
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
	cfgPath := fs.String("config", "wasmgate.yaml", "config file, or etcd://HOST:PORT[,HOST:PORT]/PREFIX for a fleet's config")
	logLevel := fs.String("log-level", "", "process log level (debug, info, warn, error); default from the config")
	listen := fs.String("listen", "", "host:port of the proxy listener, over the config's listen.address (a gateway of a fleet sets its own)")
	adminAddr := fs.String("admin", "", "host:port of the admin API, over the config's admin.address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := server.New(server.Options{
		ConfigPath:    *cfgPath,
		Log:           log,
		AdminToken:    os.Getenv("WASMGATE_ADMIN_TOKEN"),
		ListenAddress: *listen,
		AdminAddress:  *adminAddr,
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
		fmt.Fprint(stderr, "usage: wasmgate config validate FILE | push FILE --to URL | pull URL | schema\n")
		return 2
	}
	switch args[0] {
	case "push":
		return configPush(args[1:], stdout, stderr)
	case "pull":
		if len(args) != 2 {
			fmt.Fprint(stderr, "usage: wasmgate config pull etcd://HOST:PORT/PREFIX\n")
			return 2
		}
		name, yaml, rev, err := server.Pull(args[1])
		if err != nil {
			fmt.Fprintf(stderr, "wasmgate: %v\n", err)
			return 1
		}
		stdout.Write(yaml)
		fmt.Fprintf(stderr, "%s: revision %d (push an edit of it with --revision %d)\n", name, rev, rev)
		return 0
	case "validate":
		if len(args) != 2 {
			fmt.Fprint(stderr, "usage: wasmgate config validate FILE\n")
			return 2
		}
		cfg, err := server.Validate(args[1], os.Getenv("WASMGATE_ADMIN_TOKEN"))
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

func configPush(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := fs.String("to", "", "the fleet: etcd://HOST:PORT[,HOST:PORT]/PREFIX")
	rev := fs.Int64("revision", server.AnyRevision, "push only if the fleet's config is still at this revision (the one your edit started from, as config pull prints it; 0: none pushed yet); default: the revision there now")
	by := fs.String("by", "", "who pushes, recorded in the fleet (default: USER@HOST)")
	// The file may come before the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() != 0 || file == "" || *to == "" {
		fmt.Fprint(stderr, "usage: wasmgate config push FILE --to etcd://HOST:PORT/PREFIX [--revision N] [--by NAME]\n")
		return 2
	}
	if *by == "" {
		host, _ := os.Hostname()
		*by = os.Getenv("USER") + "@" + host
	}
	res, err := server.Push(file, *to, *rev, *by, os.Getenv("WASMGATE_ADMIN_TOKEN"))
	if err != nil {
		var conflict *fleet.ConflictError
		if errors.As(err, &conflict) {
			fmt.Fprintf(stderr, "wasmgate: not pushed: the fleet's config is at revision %d, not %d: someone pushed since; pull it, merge, and push with --revision %d\n",
				conflict.Actual, conflict.Expected, conflict.Actual)
			return 1
		}
		printConfigError(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: pushed to %s as revision %d (was %d; %d routes, %d plugin modules)\n", file, *to, res.Revision, res.Previous, res.Routes, res.Modules)
	return 0
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
		fmt.Fprint(stderr, "usage: wasmgate bench proxy|plugins|coldstart|cache|traffic [flags]\n")
		return 2
	}
	name, args := args[0], args[1:]
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var run func(ctx context.Context) error
	switch name {
	case "proxy":
		o := bench.ProxyOptions{LoadOptions: bench.LoadOptions{Progress: stderr}}
		o.RegisterFlags(fs)
		run = func(ctx context.Context) (err error) {
			if o.Gateway, err = os.Executable(); err == nil {
				_, err = bench.RunProxy(ctx, o, stdout)
			}
			return err
		}
	case "plugins":
		o := bench.PluginsOptions{LoadOptions: bench.LoadOptions{Progress: stderr}}
		o.RegisterFlags(fs)
		run = func(ctx context.Context) (err error) {
			if o.Gateway, err = os.Executable(); err == nil {
				_, err = bench.RunPlugins(ctx, o, stdout)
			}
			return err
		}
	case "coldstart":
		return bench.ColdstartCommand(args, stdout, stderr)
	case "cache":
		var o bench.HitRatioOptions
		o.RegisterFlags(fs)
		out := fs.String("out", "bench/results", "directory for the JSON, markdown and SVG reports")
		run = func(context.Context) error {
			_, err := bench.RunCacheHitRatio(o, *out, stdout)
			return err
		}
	case "traffic":
		run = benchTraffic(fs, stdout, stderr)
	case "upstream": // internal: the benchmark's upstream process
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		count := fs.Bool("count", false, "count requests (GET "+bench.UpstreamHitsPath+" reads the count); URIs ending in /json get the JSON body")
		run = func(ctx context.Context) error {
			if *count {
				return bench.ServeCountingUpstream(ctx, *addr)
			}
			return bench.ServeUpstream(ctx, *addr)
		}
	case "bare-proxy": // internal: the benchmark's floor, a bare fasthttp proxy
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		upstream := fs.String("upstream", "", "upstream host:port")
		run = func(ctx context.Context) error { return bench.ServeBareProxy(ctx, *addr, *upstream) }
	default:
		fmt.Fprintf(stderr, "wasmgate bench: unknown benchmark %q (have: proxy, plugins, coldstart, cache, traffic)\n", name)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(stderr, "wasmgate bench %s: %v\n", name, err)
		return 1
	}
	return 0
}
