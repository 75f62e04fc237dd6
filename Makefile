# boxoffice — common tasks. `make run` starts the demo, `make test` runs every test.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
STRIPE_MOCK_VERSION ?= v0.203.0
DATA ?= ./data

.PHONY: run build test test-browser bench lint fuzz clean tools

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

## bench: the measured benchmarks of docs/BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench 'BenchmarkEngineHold|BenchmarkReplay' -benchmem ./engine
	$(GO) test -run '^$$' -bench 'BenchmarkEventActorHolds' -benchtime 400000x -count 3 ./actors
	$(GO) test -run '^$$' -bench 'BenchmarkStadiumRecovery' -benchtime 5x ./actors
	$(GO) test -run '^$$' -bench 'BenchmarkStadiumHeap' -benchtime 1x -count 3 ./web
	$(GO) test -run '^$$' -bench 'BenchmarkSeatMap' ./web
	$(GO) test -run '^$$' -bench 'BenchmarkAppend' ./persistence
	$(GO) test -run '^$$' -bench 'BenchmarkBestAvailable' ./engine
	$(GO) test -run '^$$' -bench 'BenchmarkLiveFanout' -benchtime 1x ./web

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
