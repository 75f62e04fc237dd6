# boxoffice — common tasks. `make run` starts the demo, `make test` runs every test.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
STRIPE_MOCK_VERSION ?= v0.203.0
DATA ?= ./data

.PHONY: run build test test-browser bench bench-hot-event bench-flashsale lint fuzz clean tools

## run: build and serve the demo (embedded Pebble in $(DATA), two demo events) on :8080
run: build
	./bin/boxoffice serve --demo --data $(DATA)

## build: the boxoffice binary in ./bin
build:
	$(GO) build -o bin/boxoffice ./cmd/boxoffice

## tools: stripe-mock, the Stripe peer of the Stripe adapter's tests, into $(go env GOPATH)/bin
tools:
	$(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

## test: every test, with the race detector (what CI runs)
test: tools
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## test-browser: the UI in real chromium (/usr/bin/chromium) against the real binary; screenshots in artifacts/
test-browser:
	$(GO) vet -tags browser ./web/ui/...
	$(GO) test -tags browser -count=1 -v ./web/ui/...

## bench: the measured benchmarks of docs/BENCHMARKS.md, one measurement at a time on a shared machine
## (BENCH_LOCK; empty it to run without the lock)
BENCH_LOCK ?= flock /tmp/boxoffice-bench.lock
bench:
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkEngineHold|BenchmarkReplay' -benchmem ./engine
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkEventActorHolds' -benchtime 400000x -count 3 ./actors
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkStadiumRecovery' -benchtime 5x ./actors
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkStadiumHeap' -benchtime 1x -count 3 ./web
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkSeatMap' ./web
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkAppend' ./persistence
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkBestAvailable' ./engine
	$(BENCH_LOCK) $(GO) test -run '^$$' -bench 'BenchmarkLiveFanout' -benchtime 1x ./web

## bench-hot-event: one hot stadium event at BENCH_RATE hold decisions/s for 20 s (server and generator on
## this machine), with the CPU of each; BENCH_SERVE_FLAGS go to boxoffice serve
BENCH_RATE ?= 5000
BENCH_SERVE_FLAGS ?=
bench-hot-event: build
	$(BENCH_LOCK) cmd/boxoffice/loadgen/bench-hot-event.sh ./bin/boxoffice $(BENCH_RATE) $(BENCH_SERVE_FLAGS)

## bench-flashsale: a fresh server on a temporary data directory (rate limits off), a fresh stadium event
## with a waiting room, and BENCH_BUYERS buyers arriving over BENCH_OVER until sold out; prints the report
## (also artifacts/flashsale-report.html and .json) and fails when the oversell audit does
BENCH_BUYERS ?= 1000000
BENCH_OVER ?= 60s
BENCH_ADDR ?= 127.0.0.1:18181
BENCH_ADMIT_PER_SECOND ?= 2000
BENCH_MAX_DURATION ?= 10m
BENCH_LOAD_FLAGS ?=
bench-flashsale: build
	@mkdir -p artifacts; dir=$$(mktemp -d); token=bench-$$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n'); \
	./bin/boxoffice serve --data $$dir --addr $(BENCH_ADDR) --anonymous-sessions --rate-limit-per-second 0 \
		--admin-token $$token --log-format json > $$dir/serve.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf $$dir' EXIT; \
	./bin/boxoffice load --target http://$(BENCH_ADDR) --admin-token $$token \
		--create-event-from testdata/venues/harbour-stadium.json --hold-ttl 30s --max-duration $(BENCH_MAX_DURATION) \
		--waiting-room-admit-per-second $(BENCH_ADMIT_PER_SECOND) --waiting-room-admission-ttl 60s \
		--buyers $(BENCH_BUYERS) --arrival steady --arrival-over $(BENCH_OVER) \
		--report artifacts/flashsale-report.html --json artifacts/flashsale-report.json $(BENCH_LOAD_FLAGS); \
	status=$$?; [ $$status -eq 0 ] || tail -20 $$dir/serve.log; exit $$status

## lint: go vet and staticcheck (fetched through the Go module proxy)
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## fuzz: run every fuzz target for $(FUZZTIME) each (make test runs their seed corpora)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin
