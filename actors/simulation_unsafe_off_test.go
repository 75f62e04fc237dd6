//go:build !boxoffice_unsafe_double_sell

package actors_test

// simUnsafeDoubleSell: the engine is the real one (see
// simulation_unsafe_on_test.go).
const simUnsafeDoubleSell = false
