//go:build boxoffice_unsafe_double_sell

package engine

// unsafeSkipAvailabilityCheck, in a build with the tag
// boxoffice_unsafe_double_sell only, makes Hold sell seats that are taken
// (and Apply accept such a hold on replay): a deliberately broken engine,
// with which web.TestLinearizabilityCanFail proves that the
// linearizability check catches a double sale. Never build a server with
// this tag.
const unsafeSkipAvailabilityCheck = true
