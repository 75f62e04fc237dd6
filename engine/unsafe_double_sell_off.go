//go:build !boxoffice_unsafe_double_sell

package engine

// unsafeSkipAvailabilityCheck is false in every real build; see
// unsafe_double_sell_on.go.
const unsafeSkipAvailabilityCheck = false
