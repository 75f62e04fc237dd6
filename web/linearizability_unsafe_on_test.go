//go:build boxoffice_unsafe_double_sell

package web

// linUnsafeDoubleSell: this test binary was built with the engine's
// availability check skipped (engine/unsafe_double_sell_on.go), to prove
// that TestLinearizability can fail.
const linUnsafeDoubleSell = true
