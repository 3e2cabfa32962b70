// Package traffic is the pure core of run-time traffic management: sticky
// hashing, weighted sticky splits, user segments, feature flags, and the
// store of the traffic state an operator changes at run time (splits,
// blue-green switches, flags, plugin canaries), with its history, rollback,
// audit log and state file. It knows no HTTP: the gateway reads requests
// through the Request interface and wires the rest.
//
// # Sticky users
//
// A request's sticky key (a header, cookie, query parameter, the consumer or
// a token claim, per route) is hashed with Hash, which is fixed across
// processes, machines and releases: every gateway instance puts the same user
// on the same side of a split and in the same percentage bucket, with no
// shared state. A request without a key gets a random hash: it is split like
// a random user, but not stuck. Percentages (of flags and segments) are
// buckets of the hash in basis points, so raising a percentage only adds
// users: the first 10% stay in at 20%. Splits use weighted rendezvous
// hashing on other bits of the same hash, so a 10% canary is not the same
// users as a 10% flag, and changing one arm's weight moves users only into
// or out of that arm, never between the others.
//
// # Segments and flags
//
// A segment is a named set of users, a member when any of its criteria
// matches: the user key is in a list, a header or claim has one of a list of
// values, or the sticky hash is within a percentage (a request without a
// sticky key is never in a percentage: membership must not flicker). A flag
// is on for a request when it is enabled, the request is in the flag's
// segment (if it names one), and its hash is within the flag's percentage
// (default 100; a request without a key gets a random hash here, so a keyless
// client sees a 30% flag on 30% of its requests).
//
// # File and run time
//
// Every piece of traffic state is an item: a Key (kind and name, e.g.
// split/checkout or flag/new-checkout) with a JSON value. The config file
// gives each item its file value; an operator may override it at run time
// (Store.Set, the admin API). The effective value is the override when there
// is one, else the file value, and GET /traffic shows both, so drift from
// the file is visible.
//
// An override stays in force across config reloads as long as the file's
// value for its key is the one the override was made against. When an
// operator edits that value in the file (or adds or removes the key), the
// file wins: the override is dropped and the audit log says so. Reloads that
// change other parts of the config leave overrides alone. Setting an item
// back to the file's value ends its override.
//
// # History and rollback
//
// Every run-time change is kept in a bounded history. Rollback undoes the
// newest change still in history, restoring the item exactly as it was
// before (its previous override, or its file value); each call goes one more
// step back. Rollbacks are audited but not themselves recorded in history,
// so two rollbacks undo two changes rather than cancel each other. An edit
// of an item's value in the file discards that item's history (and drops its
// override): a rollback never undoes an edit of the file.
//
// Every change (run-time changes, rollbacks, overrides dropped by the file,
// and file changes on reload) is validated as a whole candidate state by
// the caller's Check before it becomes visible; a rejected change leaves
// nothing behind: no state change, no history, no audit entry, no write.
//
// # What is persisted
//
// With a state file (Options.StatePath), each change is written to it
// before it becomes visible: the overrides with the file value each was made
// against, the history and the audit log, as versioned JSON (mode 0600,
// written to a temporary file, synced and renamed into place). A restart
// restores all three, then the first SetFile (call it before serving)
// applies the override rule against the file as it is now. File values are
// not persisted: the config file holds them. A missing state file is a fresh
// start; one that cannot be read or parsed stops NewStore with an error
// naming the file, and is never overwritten.
package traffic
