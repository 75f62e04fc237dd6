//go:build !boxoffice_unsafe_double_sell

package web

// linUnsafeDoubleSell: the engine is the real one (see
// linearizability_unsafe_on_test.go).
const linUnsafeDoubleSell = false
