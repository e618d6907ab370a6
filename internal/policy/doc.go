// Package policy compiles an identity pool's CEL expressions (condition,
// identity claim, subject/groups/attribute mapping) once, with output-type,
// length and static-cost checks, and evaluates them on every exchange under a
// runtime cost limit, failing closed: any evaluation error, missing claim or
// wrongly typed result is a denial with a stable reason and an explainable trace.
//
// It depends only on cel.dev/cel-go, internal/storage (for storage.Pool) and
// internal/oauth2 (the vocabulary of the defaults it judges, issued.go);
// it knows nothing about tokens, HTTP or how claims were verified, so the
// grant, the admin dry-run and config validation share exactly one evaluator.
// The shape follows octo-sts trust_policy.go (compile once, default deny) and
// dex pkg/cel (type and cost checks at load).
package policy
