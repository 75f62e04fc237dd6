//go:build boxoffice_unsafe_double_sell

package actors_test

// simUnsafeDoubleSell: this test binary was built with the engine's
// availability check skipped (engine/unsafe_double_sell_on.go), to prove
// that TestSimulation can fail.
const simUnsafeDoubleSell = true
