# Two commands on a fresh machine do all set-up (see README):
#   make demo   - the example migration on the bundled local test cluster
#   make test   - every test, including e2e against the local test cluster
SHELL := /bin/bash
GO    ?= go
BIN   := bin/runbook

.PHONY: build test unit vet demo sandbox-up sandbox-down tools schema fuzz reliability mermaid release

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/runbook

# The release into dist/: archives for five platforms, checksums, SBOMs, the krew
# manifest and (with buildah) the container image; reproducible (hack/release.sh).
release:
	bash hack/release.sh

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

# Regenerates the checked-in JSON Schema from the action registry.
schema:
	$(GO) run ./cmd/runbook schema > schema/runbook.schema.json

# Packages that need no cluster.
unit:
	RUNBOOK_MMDC=$$(bash hack/mermaid-cli.sh --print) $(GO) test -count=1 $$($(GO) list ./... | grep -v '/test/')
	# deploy/rbac.yaml against every action's declared needs: no cluster needed,
	# so an action whose permissions are not granted fails here already.
	$(GO) test -count=1 -run '^TestRBACMatchesDeclaredNeeds$$' ./test/deploy
	# The binary sets hack/build-tools.sh builds per flavour against what each flavour
	# starts and README's tables: no cluster either.
	$(GO) test -count=1 -run '^(TestBuildSetsMatchFlavours|TestMissingToolsNamesBinaryAndCommand)$$' ./test/sandbox

fuzz:
	$(GO) test ./runbooks -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./runbooks -run '^$$' -fuzz FuzzValues -fuzztime $${FUZZTIME:-20s}

mermaid:
	@bash hack/mermaid-cli.sh

# --- local test cluster (owned by hack/ and test/sandbox) ---
# Every binary set (make test's); `bash hack/build-tools.sh --flavour X` builds one flavour's.
tools:
	@bash hack/build-tools.sh --all

# SCENARIO=<name|file> (default: default) FLAVOUR=crd|apiserver|operator|operator-v1.40 (default: crd;
# operator: tigera-operator v1.34.13 as Calico v3.28.5 ships it, operator-v1.40: a newer one; both stand-ins)
sandbox-up:
	@SCENARIO="$(SCENARIO)" FLAVOUR="$(FLAVOUR)" bash hack/sandbox.sh up

sandbox-down:
	@bash hack/sandbox.sh down

.PHONY: sandbox-status
sandbox-status:
	@bash hack/sandbox.sh status

# Unit packages first, side by side. Then the packages under test/ that start local
# clusters (e2e, the reliability and fault campaigns, deploy, sandbox...), one package
# at a time (-p 1): two control planes side by side on a 2-core CI machine starve each
# other (a sandbox whose scheduler is not Ready within 2 min), which is a flake, not a
# finding.
# The reliability and fault campaigns run last, verbose, through hack/test-campaign.sh,
# which prints their numbers (crashes injected/survived, restarts survived, scenarios).
# mermaid: the Mermaid CLI that renders the reports' charts in a test (hack/mermaid-cli.sh).
test: vet tools mermaid unit
	RUNBOOK_TOOLS_DIR=$$(bash hack/build-tools.sh --print-dir --all) $(GO) test -count=1 -p 1 -timeout 30m \
		$$($(GO) list ./test/... | grep -v -e '/test/reliability$$' -e '/test/faults$$')
	RUNBOOK_TOOLS_DIR=$$(bash hack/build-tools.sh --print-dir --all) bash hack/test-campaign.sh
	# A count, not a time: a time-limited fuzz run on a loaded 2-core machine can end in
	# "context deadline exceeded" when the deadline lands while a worker starts (seen in CI).
	$(MAKE) fuzz FUZZTIME=3000x

# The reliability campaign's full set (test/reliability): SIGKILL at every step boundary and
# at random instants of the example migration (several migrations, leases waited out),
# lock contention with processes, bad input: about 28 minutes (116 kills; one trial waits out
# some 35 leases). `make test` runs its reduced set.
# RELIABILITY_SEED=<n> replays the random kill instants of a logged run.
reliability: tools
	RELIABILITY=long RUNBOOK_TOOLS_DIR=$$(bash hack/build-tools.sh --print-dir --all) $(GO) test -count=1 -v -timeout 90m ./test/reliability

# A fresh sandbox each time: the demo migrates it. It builds only the binary sets of
# its FLAVOUR (default crd: no Calico API server), like sandbox-up.
demo: build
	@bash hack/sandbox.sh down >/dev/null 2>&1 || true
	@SCENARIO="$(SCENARIO)" FLAVOUR="$(FLAVOUR)" bash hack/sandbox.sh up
	SCENARIO="$(SCENARIO)" FLAVOUR="$(FLAVOUR)" bash examples/migrate-ippool/demo.sh
