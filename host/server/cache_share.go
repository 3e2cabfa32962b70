package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wasmgate/wasmgate/host/config"
)

// Cache purges shared by the gateways on one Redis server: a purge through
// any gateway's admin API is applied there, then published on a Redis
// channel; every gateway subscribed applies it to its own caches as it
// arrives (sub-millisecond on one network). A gateway whose subscription
// broke cannot know what it missed: when it subscribes again it empties
// its caches, so it never serves an entry purged meanwhile.

// cacheShare is one gateway's side of the shared purges.
type cacheShare struct {
	client  *redis.Client
	channel string
	id      string // this gateway's, so it skips its own purges
	sub     *redis.PubSub
	done    chan struct{}
}

// purgeMessage is what goes over the channel.
type purgeMessage struct {
	From string `json:"from"`
	purgeRequest
}

func newCacheShare(cfg config.Redis, current *atomic.Pointer[snapshot], log *slog.Logger) *cacheShare {
	var id [8]byte
	_, _ = rand.Read(id[:])
	c := &cacheShare{
		client: redis.NewClient(&redis.Options{
			Addr: cfg.Address, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
			DialTimeout: time.Second, ReadTimeout: -1, WriteTimeout: time.Second,
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}),
		channel: cfg.KeyPrefix + "cache-purge",
		id:      hex.EncodeToString(id[:]),
		done:    make(chan struct{}),
	}
	c.sub = c.client.Subscribe(context.Background(), c.channel)
	go c.run(current, log)
	return c
}

// run applies the other gateways' purges until Close.
func (c *cacheShare) run(current *atomic.Pointer[snapshot], log *slog.Logger) {
	defer close(c.done)
	subscribed := 0
	for {
		msg, err := c.sub.Receive(context.Background())
		if err != nil {
			if err == redis.ErrClosed {
				return
			}
			continue // go-redis reconnects and subscribes again
		}
		snap := current.Load()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if subscribed++; subscribed > 1 && snap != nil {
				n := purgeCaches(snap, purgeRequest{Prefix: ""})
				log.Warn("cache purge channel subscribed again: caches emptied, purges may have been missed", "entries", n)
			}
		case *redis.Message:
			var p purgeMessage
			if json.Unmarshal([]byte(m.Payload), &p) != nil || p.From == c.id || snap == nil {
				continue
			}
			n := purgeCaches(snap, p.purgeRequest)
			log.Info("cache purged by another gateway", "route", p.Route, "key", p.Key, "prefix", p.Prefix, "surrogate_key", p.SurrogateKey, "entries", n)
		}
	}
}

// publish sends a purge to the other gateways and returns how many
// received it.
func (c *cacheShare) publish(ctx context.Context, req purgeRequest) (int64, error) {
	b, err := json.Marshal(purgeMessage{From: c.id, purgeRequest: req})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	n, err := c.client.Publish(ctx, c.channel, b).Result()
	if err != nil {
		return 0, fmt.Errorf("redis %s: %w", c.client.Options().Addr, err)
	}
	return n - 1, nil // not counting this gateway's own subscription
}

// Close stops the subscription.
func (c *cacheShare) Close() {
	_ = c.sub.Close()
	_ = c.client.Close()
	<-c.done
}
