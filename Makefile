# Targets mirror CI (.ci/run runs `make ci`).
GO          ?= go
GOARCH      ?= arm64
FUNCTIONS   := register ballot tally dashboard
BIN         := bin/$(GOARCH)
LDFLAGS     := -s -w

# The most a bootstrap may weigh (arm64, stripped): a function links only
# what its stage uses.
MAX_BOOTSTRAP_BYTES := 15728640
TESTFLAGS   ?=
TIMEOUT     ?= 20m

.PHONY: test race chaos lint build run audit bench ci clean tidy $(FUNCTIONS)

## test: every test, against the local Postgres, NATS and Chromium (TESTFLAGS=-race: with the race detector)
test:
	$(GO) test $(TESTFLAGS) -timeout $(TIMEOUT) ./...

## race: every test under the race detector (what CI runs)
race:
	$(MAKE) test TESTFLAGS=-race TIMEOUT=40m

## chaos: the long fault drills: 100,000-voter elections under hundreds of worker
## crashes, database outages and replays, 100,000 bad records, a 1,000,000-vote backlog
chaos:
	$(GO) test ./local/harness -run '^Test(Drill|DeadLetters)' -drill.long -count=1 -v -timeout 90m

## lint: formatting, vet, and a tidy module
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod /tmp/go.mod.lint && cp go.sum /tmp/go.sum.lint && $(GO) mod tidy && \
	  if ! cmp -s go.mod /tmp/go.mod.lint || ! cmp -s go.sum /tmp/go.sum.lint; then \
	    cp /tmp/go.mod.lint go.mod; cp /tmp/go.sum.lint go.sum; echo "go mod tidy changes go.mod/go.sum"; exit 1; fi

## build: the Lambda bootstraps, bin/$(GOARCH)/<function>/bootstrap (GOARCH=amd64 for x86_64), each at most 15 MB
build: $(FUNCTIONS)
	@ls -l $(BIN)/*/bootstrap | awk '{printf "%-40s %6.1f MB\n", $$9, $$5/1048576; if ($$5 > $(MAX_BOOTSTRAP_BYTES)) { big = 1 }} \
	  END { if (big) { print "a bootstrap is over 15 MB: it links more than its stage uses"; exit 1 } }'

$(FUNCTIONS):
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -tags lambda.norpc -trimpath \
	  -ldflags '$(LDFLAGS)' -o $(BIN)/$@/bootstrap ./functions/$@

## build-<LogicalId>: what `sam build` runs for each function of template.yaml
## (BuildMethod: makefile); SAM sets ARTIFACTS_DIR.
SAM_TARGETS := build-RegisterFunction build-BallotFunction build-TallyFunction build-DashboardFunction build-CastFunction
.PHONY: $(SAM_TARGETS)
build-RegisterFunction:  SAM_FUNCTION := register
build-BallotFunction:    SAM_FUNCTION := ballot
build-TallyFunction:     SAM_FUNCTION := tally
build-DashboardFunction: SAM_FUNCTION := dashboard
build-CastFunction:      SAM_FUNCTION := cast
$(SAM_TARGETS):
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)"; exit 1; }
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath \
	  -ldflags '$(LDFLAGS)' -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(SAM_FUNCTION)

## run: the whole pipeline locally (embedded Kafka, local Postgres)
run:
	$(GO) run ./local

## audit: recount the local election
audit:
	$(GO) run ./local audit

## bench: throughput against the COPY ceiling
bench:
	$(GO) run ./local bench

## ci: what .ci/run runs: lint, every test under the race detector, the bootstraps
ci: lint race build

clean:
	rm -rf bin .aws-sam
