//go:build !linux

package web

import (
	"errors"
	"time"
)

// The fan-out benchmark's epoll client (live_bench_epoll_test.go) is Linux
// only; elsewhere BOXOFFICE_FANOUT_GORILLA_CLIENTS=1 runs the benchmark
// with a goroutine per subscriber.
type (
	rawFeed      struct{}
	epollClients struct{}
)

func startEpollClients([]*fanoutSubscriber, int, time.Duration) (*epollClients, error) {
	return nil, errors.New("the fan-out benchmark's epoll client needs Linux: set BOXOFFICE_FANOUT_GORILLA_CLIENTS=1")
}

func (*epollClients) stopAndClose() {}
