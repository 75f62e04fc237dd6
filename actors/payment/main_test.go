package payment_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind: the
// simulated provider's scheduler and workers, webhook deliveries, stripe-mock
// readers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
