package ratelimit

import "net/netip"

// IPv6BucketBits is the prefix length IPv6 clients are bucketed by: a
// single host (a home connection, a VM) is routinely given a whole /64, so
// a bucket per /128 would let it pick a fresh address for every request.
const IPv6BucketBits = 64

// IPBucket is the rate-limit key of a client address: the address itself
// for IPv4 (IPv4-mapped IPv6 included, so both forms share a bucket), its
// /64 for IPv6 (zone dropped). A value that is not an address is returned
// as given.
func IPBucket(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a.Is4() {
		// netip accepts only the canonical dotted-quad form (no leading
		// zeros), so the string is already what a.String() would format
		// (TestIPBucketIPv4), without an allocation per request.
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(IPv6BucketBits)
	if err != nil {
		return ip
	}
	return p.String()
}
