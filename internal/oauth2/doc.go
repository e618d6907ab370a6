// Package oauth2 is the protocol vocabulary shared by every OAuth endpoint:
// grant-type and token-type URNs cited by RFC section, the error codes of
// RFC 6749 §5.2 and RFC 8693 §2.2.2, the [*Error] value handlers return, and
// the one place ([WriteError], [WriteJSON]) that writes responses with
// Cache-Control: no-store. It is a leaf and imports nothing from this module.
package oauth2
