# herald's developer commands. `make test` is what CI runs (.ci/run).
GO ?= go
FUZZTIME ?= 10s
STATICCHECK ?= v0.8.2
COMPARE_FLAGS ?=

.PHONY: test demo deps lint fuzz bench bench-compare

# Node packages for the tests (socket.io-client, playwright-core) and the
# demo page (socket.io-client's browser bundle), from the committed locks.
testdata/node_modules/.package-lock.json: testdata/package-lock.json
	cd testdata && npm ci --no-audit --no-fund
examples/node_modules/.package-lock.json: examples/package-lock.json
	cd examples && npm ci --no-audit --no-fund

deps: testdata/node_modules/.package-lock.json examples/node_modules/.package-lock.json

# Run the demo on http://localhost:3000 (HERALD_ADDR to change it). The
# build says what it compiles: on a cold machine it takes a minute or two.
demo: examples/node_modules/.package-lock.json
	@echo "==> building the demo (go build -v ./examples/server): the first build downloads and compiles herald's dependencies, a minute or two"
	$(GO) build -v -o bin/herald-demo ./examples/server
	@echo "==> starting the demo (Ctrl-C stops it)"
	./bin/herald-demo

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

# Every test, with the race detector and the goroutine-leak check; the soak
# test again without the detector (its figures would be the detector's);
# then each fuzz target for 30,000 inputs (a count, not a duration: Go
# 1.26 can fail a timed fuzz run at its deadline, golang/go#75804).
test: deps lint
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '^TestSoak$$' -v ./socketio
	$(MAKE) fuzz FUZZTIME=30000x

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzExtractToken$$' -fuzztime=$(FUZZTIME) ./auth
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./auth
	$(GO) test -run='^$$' -fuzz='^FuzzVerifySigned$$' -fuzztime=$(FUZZTIME) ./auth
	$(GO) test -run='^$$' -fuzz='^FuzzParseJWKS$$' -fuzztime=$(FUZZTIME) ./auth
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./events
	$(GO) test -run='^$$' -fuzz='^FuzzBytesJSON$$' -fuzztime=$(FUZZTIME) ./events
	$(GO) test -run='^$$' -fuzz='^FuzzAppendJSON$$' -fuzztime=$(FUZZTIME) ./internal/msgpack
	$(GO) test -run='^$$' -fuzz='^FuzzValidateRoom$$' -fuzztime=$(FUZZTIME) ./socketio
	$(GO) test -run='^$$' -fuzz='^FuzzForwardedClientIP$$' -fuzztime=$(FUZZTIME) ./socketio
	$(GO) test -run='^$$' -fuzz='^FuzzPollingPayload$$' -fuzztime=$(FUZZTIME) ./socketio/engineio
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./socketio/internal/parser
	$(GO) test -run='^$$' -fuzz='^FuzzSplitArray$$' -fuzztime=$(FUZZTIME) ./socketio/internal/parser
	$(GO) test -run='^$$' -fuzz='^FuzzAppendEvent$$' -fuzztime=$(FUZZTIME) ./socketio/internal/parser
	$(GO) test -run='^$$' -fuzz='^FuzzMsgpackDecoder$$' -fuzztime=$(FUZZTIME) ./socketio/internal/parser
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeClassic$$' -fuzztime=$(FUZZTIME) ./adapter
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeSharded$$' -fuzztime=$(FUZZTIME) ./adapter
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeStreamEntry$$' -fuzztime=$(FUZZTIME) ./adapter
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeSession$$' -fuzztime=$(FUZZTIME) ./adapter
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRequest$$' -fuzztime=$(FUZZTIME) ./adapter
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./bench/internal/eio
	$(GO) test -run='^$$' -fuzz='^FuzzScanEvent$$' -fuzztime=$(FUZZTIME) ./bench/internal/eio
	$(GO) test -run='^$$' -fuzz='^FuzzCutPayload$$' -fuzztime=$(FUZZTIME) ./bench/internal/eio

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

# herald against the Node socket.io server, scenario by scenario
# (bench/SPEC.md): a Markdown table on stdout. It builds the bench server
# and the load generator, runs npm ci in bench/node, starts its own
# redis-server, and takes a while: COMPARE_FLAGS=-quick for a smoke test,
# e.g. COMPARE_FLAGS='-scenarios idle,fanout -json bench.json'.
bench-compare:
	$(GO) run ./bench/cmd/compare $(COMPARE_FLAGS)
