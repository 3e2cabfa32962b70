package ratelimit_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/wasmgate/wasmgate/host/ratelimit"
)

func ExampleLocal() {
	clock := time.Unix(0, 0) // a fixed clock, for a stable output
	l := ratelimit.NewLocal(ratelimit.LocalOptions{Now: func() time.Time { return clock }})
	defer l.Close()
	limits := []ratelimit.Limit{
		{Name: "per-second", Rate: 2, Period: time.Second},
		{Name: "per-hour", Rate: 100, Period: time.Hour},
	}
	fmt.Println(string(ratelimit.AppendPolicy(nil, limits)))
	var d ratelimit.Decision // reuse one per request goroutine
	for i := 0; i < 3; i++ {
		if err := l.Decide(context.Background(), "client-1", limits, 1, &d); err != nil {
			log.Fatal(err)
		}
		fmt.Println(d.Allowed, d.RetryAfter, string(ratelimit.AppendRateLimit(nil, limits, &d)))
	}
	// Output:
	// "per-second";q=2;w=1, "per-hour";q=100;w=3600
	// true 0s "per-second";r=1;t=1
	// true 0s "per-second";r=0;t=1
	// false 500ms "per-second";r=0;t=1
}

func ExampleNewRedis() {
	local := ratelimit.NewLocal(ratelimit.LocalOptions{})
	defer local.Close()
	r, err := ratelimit.NewRedis(ratelimit.RedisOptions{
		Addr:     "127.0.0.1:6379",
		Prefix:   "wasmgate:rl:",
		Fallback: local, // decides while Redis fails
		OnFallback: func(err error) {
			log.Printf("redis failing, rate limits are per instance: %v", err)
		},
		OnRecover: func() { log.Print("redis is back, rate limits are shared again") },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	var d ratelimit.Decision
	limits := []ratelimit.Limit{{Name: "per-minute", Rate: 600, Period: time.Minute, Burst: 50}}
	if err := r.Decide(context.Background(), "route-a|203.0.113.7", limits, 1, &d); err != nil {
		log.Fatal(err)
	}
	if !d.Allowed {
		fmt.Println("429, Retry-After:", ratelimit.RetryAfterSeconds(d.RetryAfter))
	}
}
