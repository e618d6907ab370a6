// Package sts is the domain vocabulary at the centre of the service: the
// [Error] type with its small set of [Code]s, and the helpers that turn any
// error into a code and a message safe to show a caller. It is a leaf: it
// imports nothing from this module, so every other package can depend on it
// without depending on storage, transports or each other.
package sts
