// Package router compiles the configured routes into an immutable Table and
// matches requests against it without allocating.
//
// A Table is built once per config load by Compile and then shared read-only by
// every request goroutine, so a reload is a pointer swap of the whole Table.
//
// # Route precedence
//
// The order below is deterministic: the same config and request always pick the
// same route, whatever the order of hosts or conditions inside a route.
//
//  1. Host. The request host (port and a trailing dot stripped, compared
//     lower-case) is looked up first among exact hosts, then among wildcards
//     "*.example.com" from the longest matching suffix to the shortest (a
//     wildcard matches a.example.com and a.b.example.com, never example.com),
//     and last among routes without hosts. Only when no route of a more
//     specific host group matches the rest of the request does matching fall
//     through to the next group.
//  2. Path, within a host group: an exact literal path beats a template path
//     ({param} segments); templates are compared segment by segment from the
//     left, a literal segment beating a {param}, which beats a {name...}
//     catch-all. Then path_regex routes in config order (a regex must match
//     the whole path, as if written ^(?:re)$). Then prefixes, the
//     longest first. A prefix matches on segment boundaries: /api matches
//     /api, /api/ and /api/x but not /apix; a trailing slash in a prefix is
//     ignored, and prefix "/" or no path at all matches every path.
//  3. Among routes with the same path key (the same literal path, the same
//     template shape whatever its param names, the same regex, the same
//     prefix), the route with more conditions is tried first (a methods list
//     counts one, each header, query, cookie, segment and flag condition
//     counts one), then the one with the higher priority, then the one
//     earlier in the config.
//  4. A route matches only when all its conditions hold: the method is one of
//     methods (when given); every header, query and cookie condition holds.
//     A condition with value compares exactly, with regex it must match the
//     whole value, with neither it requires presence, and absent: true requires
//     absence. A header condition holds when any occurrence of the header
//     satisfies it; query and cookie conditions look at the first occurrence.
//     Segment and flag conditions are asked of Result.Traits (the gateway's
//     traffic state for this request's user).
//
// When a route's conditions fail, matching backtracks to the next candidate in
// that order: the deepest prefix first and then outward, a param after a
// failed literal, and so on, exactly as if the routes were tried one by one in
// precedence order.
//
// # Which path is matched
//
// The caller passes the request's canonical path (httpsyntax.CleanPath):
// dot segments resolved, empty segments merged, unreserved characters
// decoded and every other percent-encoding kept, upper-case. The same bytes
// are what the upstream receives, so a route and the upstream can never
// disagree on which resource a request names: "/public/../admin" and
// "/%61dmin" match, and reach the upstream as, "/admin". Params, rewrites
// and path_regex therefore see the percent-encoded form ("/my%20file").
// Configured paths must be canonical themselves; Compile says what a
// non-canonical one reads as.
//
// # Data structure
//
// Each host group holds a segment trie. A node has static children keyed by
// segment, at most one {param} child, a list of catch-all routes, the routes
// whose exact or template path ends at the node and the routes whose prefix
// ends there. Exact hosts sit in a map; wildcards sit in a map keyed by their
// suffix (".example.com"), probed once per label of the request host. Cost is
// therefore proportional to the request's path depth and host labels, not to
// the number of routes; only regex routes are scanned in turn.
package router
