package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// baseTime anchors the fake data so that answers are the same every run.
var baseTime = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)

// ---- users ----

type user struct {
	ID        int       `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Plan      string    `json:"plan"`
	Country   string    `json:"country"`
	CreatedAt time.Time `json:"created_at"`
}

var seedUsers = []user{
	{1, "Ada Lovelace", "ada@example.com", "pro", "GB", baseTime.AddDate(-2, 0, 0)},
	{2, "Alan Turing", "alan@example.com", "free", "GB", baseTime.AddDate(-1, -7, 0)},
	{3, "Grace Hopper", "grace@example.com", "enterprise", "US", baseTime.AddDate(-1, -2, -3)},
	{4, "Katherine Johnson", "katherine@example.com", "pro", "US", baseTime.AddDate(0, -9, 0)},
	{5, "Edsger Dijkstra", "edsger@example.com", "free", "NL", baseTime.AddDate(0, -1, -12)},
}

// nextUserID numbers created users (created users are echoed, not kept).
var nextUserID atomic.Int64

func init() { nextUserID.Store(100) }

func listUsers(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	s.reply(ctx, fasthttp.StatusOK, map[string]any{"users": seedUsers, "total": len(seedUsers)})
}

func getUser(s *service, ctx *fasthttp.RequestCtx, param []byte) {
	if u, ok := findUser(s, ctx, param); ok {
		s.reply(ctx, fasthttp.StatusOK, u)
	}
}

// findUser returns the seed user of the {id} segment, answering 404
// itself when there is none.
func findUser(s *service, ctx *fasthttp.RequestCtx, param []byte) (user, bool) {
	id, err := strconv.Atoi(string(param))
	if err == nil {
		if i := slices.IndexFunc(seedUsers, func(u user) bool { return u.ID == id }); i >= 0 {
			return seedUsers[i], true
		}
	}
	s.fail(ctx, fasthttp.StatusNotFound, "user %q not found", param)
	return user{}, false
}

// createUser validates the new user and echoes it with an id, 201 and a
// Location; it is not stored, so every instance behaves the same.
func createUser(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	if u, ok := newUser(s, ctx); ok {
		s.reply(ctx, fasthttp.StatusCreated, u)
	}
}

// newUser reads and validates the body of POST /users and numbers the new
// user, setting the Location header; it answers 400 or 422 itself.
func newUser(s *service, ctx *fasthttp.RequestCtx) (user, bool) {
	var in struct {
		Name    string `json:"name"`
		Email   string `json:"email"`
		Plan    string `json:"plan"`
		Country string `json:"country"`
	}
	if !decodeBody(s, ctx, &in) {
		return user{}, false
	}
	if strings.TrimSpace(in.Name) == "" || !strings.Contains(in.Email, "@") {
		s.fail(ctx, fasthttp.StatusUnprocessableEntity, "name and a valid email are required")
		return user{}, false
	}
	u := user{
		ID:        int(nextUserID.Add(1)),
		Name:      in.Name,
		Email:     in.Email,
		Plan:      cmp.Or(in.Plan, "free"),
		Country:   in.Country,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	ctx.Response.Header.Set("Location", "/users/"+strconv.Itoa(u.ID))
	return u, true
}

// ---- orders ----

type product struct {
	name       string
	priceCents int
}

var catalog = map[string]product{
	"book-gopl":  {"The Go Programming Language", 3999},
	"mug":        {"wasmgate mug", 1299},
	"sticker":    {"wasmgate sticker pack", 299},
	"hoodie":     {"wasmgate hoodie", 4999},
	"keyboard":   {"Mechanical keyboard", 12999},
	"usb-c-hub":  {"USB-C hub, 7 ports", 3499},
	"headphones": {"Noise-cancelling headphones", 19900},
}

type orderItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Qty        int    `json:"qty"`
	PriceCents int    `json:"price_cents"`
}

type order struct {
	ID         string      `json:"id"`
	UserID     int         `json:"user_id"`
	Status     string      `json:"status"`
	Items      []orderItem `json:"items"`
	TotalCents int         `json:"total_cents"`
	Currency   string      `json:"currency"`
	CreatedAt  time.Time   `json:"created_at"`
}

// newOrder prices items from the catalog; it fails on an unknown SKU or
// a quantity out of range.
func newOrder(id string, userID int, status string, created time.Time, items []orderItem) (order, error) {
	o := order{ID: id, UserID: userID, Status: status, Currency: "EUR", CreatedAt: created}
	for _, it := range items {
		p, ok := catalog[it.SKU]
		if !ok {
			return order{}, fmt.Errorf("unknown sku %q", it.SKU)
		}
		if it.Qty < 1 || it.Qty > 100 {
			return order{}, fmt.Errorf("sku %q: qty %d out of range 1-100", it.SKU, it.Qty)
		}
		o.Items = append(o.Items, orderItem{SKU: it.SKU, Name: p.name, Qty: it.Qty, PriceCents: p.priceCents})
		o.TotalCents += it.Qty * p.priceCents
	}
	return o, nil
}

var seedOrders = func() []order {
	mk := func(id string, userID int, status string, daysAgo int, items ...orderItem) order {
		o, err := newOrder(id, userID, status, baseTime.AddDate(0, 0, -daysAgo), items)
		if err != nil {
			panic(err) // the seed is a constant of this file
		}
		return o
	}
	return []order{
		mk("ord_1001", 1, "delivered", 30, orderItem{SKU: "book-gopl", Qty: 1}, orderItem{SKU: "mug", Qty: 2}),
		mk("ord_1002", 2, "shipped", 3, orderItem{SKU: "keyboard", Qty: 1}),
		mk("ord_1003", 1, "processing", 1, orderItem{SKU: "hoodie", Qty: 1}, orderItem{SKU: "sticker", Qty: 3}),
		mk("ord_1004", 3, "cancelled", 12, orderItem{SKU: "headphones", Qty: 1}),
		mk("ord_1005", 4, "delivered", 45, orderItem{SKU: "usb-c-hub", Qty: 2}),
	}
}()

// maxStoredOrders bounds an instance's memory of created orders; past it
// the book starts over (a demo, not a database).
const maxStoredOrders = 10000

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// orderBook holds the orders created on one instance and the
// Idempotency-Key that created each.
type orderBook struct {
	mu    sync.Mutex
	byID  map[string]order
	byKey map[string]keyRecord
}

// keyRecord remembers what an Idempotency-Key was first used for.
type keyRecord struct {
	bodySum uint64 // FNV-1a of the request body: a reuse with another body is refused
	orderID string
}

// nextOrderID numbers created orders across the process, so instances of
// one process never hand out the same id.
var nextOrderID atomic.Int64

func init() { nextOrderID.Store(2000) }

// lookup returns a seed or created order.
func (b *orderBook) lookup(id string) (order, bool) {
	if i := slices.IndexFunc(seedOrders, func(o order) bool { return o.ID == id }); i >= 0 {
		return seedOrders[i], true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.byID[id]
	return o, ok
}

// all returns seed and created orders, by id.
func (b *orderBook) all() []order {
	b.mu.Lock()
	out := slices.Clone(seedOrders)
	for _, o := range b.byID {
		out = append(out, o)
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(a, b order) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func listOrders(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	orders := s.orders.all()
	if v := ctx.QueryArgs().Peek("user"); v != nil {
		id, _ := strconv.Atoi(string(v))
		orders = slices.DeleteFunc(orders, func(o order) bool { return o.UserID != id })
	}
	s.reply(ctx, fasthttp.StatusOK, map[string]any{"orders": orders, "total": len(orders)})
}

func getOrder(s *service, ctx *fasthttp.RequestCtx, param []byte) {
	if o, ok := s.orders.lookup(string(param)); ok {
		s.reply(ctx, fasthttp.StatusOK, o)
		return
	}
	s.fail(ctx, fasthttp.StatusNotFound, "order %q not found", param)
}

// createdOrder is the answer to POST /orders.
type createdOrder struct {
	order
	// Replayed is true when the answer repeats the one of an earlier
	// request with the same Idempotency-Key.
	Replayed bool `json:"replayed"`
}

// createOrder creates an order. With an Idempotency-Key, a repeat of the
// same request answers the first order again (Idempotent-Replayed: true)
// and a reuse of the key with another body is refused with 422.
func createOrder(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	if len(key) > maxIdempotencyKey {
		s.fail(ctx, fasthttp.StatusBadRequest, "Idempotency-Key longer than %d bytes", maxIdempotencyKey)
		return
	}
	h := fnv.New64a()
	h.Write(ctx.PostBody())
	sum := h.Sum64()

	var in struct {
		UserID int         `json:"user_id"`
		Items  []orderItem `json:"items"`
	}
	if !decodeBody(s, ctx, &in) {
		return
	}

	b := &s.orders
	b.mu.Lock()
	if rec, ok := b.byKey[key]; ok { // "" is never stored
		o := b.byID[rec.orderID]
		b.mu.Unlock()
		if rec.bodySum != sum {
			s.fail(ctx, fasthttp.StatusUnprocessableEntity, "Idempotency-Key %q was used with a different request body", key)
			return
		}
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
		ctx.Response.Header.Set("Location", "/orders/"+o.ID)
		s.reply(ctx, fasthttp.StatusCreated, createdOrder{order: o, Replayed: true})
		return
	}
	if in.UserID < 1 || len(in.Items) == 0 || len(in.Items) > 50 {
		b.mu.Unlock()
		s.fail(ctx, fasthttp.StatusUnprocessableEntity, "user_id and 1 to 50 items are required")
		return
	}
	id := "ord_" + strconv.FormatInt(nextOrderID.Add(1), 10)
	o, err := newOrder(id, in.UserID, "created", time.Now().UTC().Truncate(time.Second), in.Items)
	if err != nil {
		b.mu.Unlock()
		s.fail(ctx, fasthttp.StatusUnprocessableEntity, "%v", err)
		return
	}
	if b.byID == nil || len(b.byID) >= maxStoredOrders {
		b.byID, b.byKey = make(map[string]order), make(map[string]keyRecord)
	}
	b.byID[id] = o
	if key != "" {
		b.byKey[key] = keyRecord{bodySum: sum, orderID: id}
	}
	b.mu.Unlock()
	ctx.Response.Header.Set("Location", "/orders/"+id)
	s.reply(ctx, fasthttp.StatusCreated, createdOrder{order: o})
}

// ---- feed ----

type feedItem struct {
	ID        string    `json:"id"`
	AuthorID  int       `json:"author_id"`
	Author    string    `json:"author"`
	Text      string    `json:"text"`
	Likes     int       `json:"likes"`
	Comments  int       `json:"comments"`
	CreatedAt time.Time `json:"created_at"`
}

var feedTexts = []string{
	"Shipped the new checkout flow today. p99 down 40%.",
	"Anyone else running WebAssembly plugins at the edge? Cold starts are tiny.",
	"Reminder: idempotency keys on every POST that moves money.",
	"Reading about consistent hashing with bounded loads. Elegant.",
	"Our canary got 5% of traffic for a day, then 100%. Zero pages.",
	"Rate limits are a product feature, not just a safety net.",
	"Tracing finally connects the gateway and the services. traceparent FTW.",
}

// getFeed answers a feed for the user, generated from the user id so the
// same user always sees the same feed: one post by each other seed user
// (author ids (uid+i)%5+1 for i < 4 never equal uid).
func getFeed(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	uid, ok := queryOrHeaderUser(s, ctx)
	if !ok {
		return
	}
	items := make([]feedItem, len(seedUsers)-1)
	for i := range items {
		author := seedUsers[(uid+i)%len(seedUsers)]
		items[i] = feedItem{
			ID:        "post_" + strconv.Itoa(uid*100+i),
			AuthorID:  author.ID,
			Author:    author.Name,
			Text:      feedTexts[(uid*3+i)%len(feedTexts)],
			Likes:     (uid*37 + i*101) % 500,
			Comments:  (uid*11 + i*7) % 40,
			CreatedAt: baseTime.Add(-time.Duration(i*3+uid%3) * time.Hour),
		}
	}
	s.reply(ctx, fasthttp.StatusOK, map[string]any{"user": uid, "items": items})
}

// ---- notifications ----

type notification struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Message   string    `json:"message"`
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"created_at"`
}

var notificationKinds = []struct{ kind, format string }{
	{"follow", "%s started following you"},
	{"like", "%s liked your post"},
	{"order_shipped", "Your order ord_%d has shipped"},
	{"mention", "%s mentioned you in a comment"},
}

// getNotifications answers the user's notifications, newest first, the
// first two unread.
func getNotifications(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	uid, ok := queryOrHeaderUser(s, ctx)
	if !ok {
		return
	}
	list := make([]notification, len(notificationKinds))
	unread := 0
	for i := range list {
		k := notificationKinds[(uid+i)%len(notificationKinds)]
		var msg string
		if k.kind == "order_shipped" {
			msg = fmt.Sprintf(k.format, 1000+uid)
		} else {
			msg = fmt.Sprintf(k.format, seedUsers[(uid+i+1)%len(seedUsers)].Name)
		}
		list[i] = notification{
			ID:        "ntf_" + strconv.Itoa(uid*1000+i),
			Type:      k.kind,
			Message:   msg,
			Read:      i >= 2,
			CreatedAt: baseTime.Add(-time.Duration(i*90+uid) * time.Minute),
		}
		if !list[i].Read {
			unread++
		}
	}
	s.reply(ctx, fasthttp.StatusOK, map[string]any{"user": uid, "unread": unread, "notifications": list})
}

// ---- legacy ----

// The legacy service is the monolith a strangler-fig migration moves away
// from: users, orders and feed under one upstream. Its orders and feed are
// the orders and feed services' handlers; its users answers are the users
// service's plus the two intended differences the package doc lists
// (updated_at on every user, user 3's email in upper case).

// legacyQuirkUserID is the one user whose legacy record differs from the
// users service's beyond updated_at.
const legacyQuirkUserID = 3

// legacyUser is a user as the legacy service answers it: the users
// service's fields, in the same order, then updated_at.
type legacyUser struct {
	user
	UpdatedAt time.Time `json:"updated_at"`
}

// legacyRecord is u as the legacy service keeps it, updated at now.
func legacyRecord(u user, now time.Time) legacyUser {
	if u.ID == legacyQuirkUserID {
		u.Email = strings.ToUpper(u.Email)
	}
	return legacyUser{user: u, UpdatedAt: now}
}

// legacyLastUpdate is the last updated_at handed out, in Unix nanoseconds.
var legacyLastUpdate atomic.Int64

// legacyNow is the updated_at of a legacy answer: the current time, moved
// up a nanosecond when needed so that it differs from every earlier one
// in the process.
func legacyNow() time.Time {
	for {
		last, now := legacyLastUpdate.Load(), time.Now().UnixNano()
		if now <= last {
			now = last + 1
		}
		if legacyLastUpdate.CompareAndSwap(last, now) {
			return time.Unix(0, now).UTC()
		}
	}
}

func listLegacyUsers(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	now := legacyNow()
	users := make([]legacyUser, len(seedUsers))
	for i, u := range seedUsers {
		users[i] = legacyRecord(u, now)
	}
	s.reply(ctx, fasthttp.StatusOK, map[string]any{"users": users, "total": len(users)})
}

func getLegacyUser(s *service, ctx *fasthttp.RequestCtx, param []byte) {
	if u, ok := findUser(s, ctx, param); ok {
		s.reply(ctx, fasthttp.StatusOK, legacyRecord(u, legacyNow()))
	}
}

// createLegacyUser is createUser with the legacy shape (updated_at); the
// email is echoed as sent.
func createLegacyUser(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	if u, ok := newUser(s, ctx); ok {
		s.reply(ctx, fasthttp.StatusCreated, legacyUser{user: u, UpdatedAt: legacyNow()})
	}
}

// ---- shared ----

// queryOrHeaderUser finds the user a feed or notification list is for:
// ?user=ID, else the X-User-Id header an auth plugin may have set.
func queryOrHeaderUser(s *service, ctx *fasthttp.RequestCtx) (int, bool) {
	v := ctx.QueryArgs().Peek("user")
	if v == nil {
		v = ctx.Request.Header.Peek("X-User-Id")
	}
	if v == nil {
		s.fail(ctx, fasthttp.StatusBadRequest, "missing ?user=ID (or an X-User-Id header)")
		return 0, false
	}
	id, err := strconv.Atoi(string(v))
	if err != nil || id < 1 {
		s.fail(ctx, fasthttp.StatusBadRequest, "user %q: want a positive integer", v)
		return 0, false
	}
	return id, true
}

// decodeBody decodes the JSON request body into v, answering 400 itself
// when it is not JSON.
func decodeBody(s *service, ctx *fasthttp.RequestCtx, v any) bool {
	if err := json.Unmarshal(ctx.PostBody(), v); err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, "request body: %v", err)
		return false
	}
	return true
}
