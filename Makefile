# Root Makefile: every target loops over the workspace modules, because
# `./...` does not cross module boundaries.

MODULES        := proto registry trainer server gateway
GO             ?= go
CACHE          := $(CURDIR)/.cache
TOOLS          := $(CACHE)/tools

# Pinned code generators. Bumping a version re-installs into a new folder.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
GRPC_GATEWAY_VERSION       := v2.33.0
GOTESTSUM_VERSION          := v1.13.0
GOOGLEAPIS_INCLUDE         ?= /usr/share/gocode/src/github.com/gogo/googleapis

PROTOC_GEN_GO      := $(TOOLS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(TOOLS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)/protoc-gen-go-grpc
PROTOC_GEN_GW      := $(TOOLS)/grpc-gateway@$(GRPC_GATEWAY_VERSION)/protoc-gen-grpc-gateway
PROTOC_GEN_OAPI    := $(TOOLS)/grpc-gateway@$(GRPC_GATEWAY_VERSION)/protoc-gen-openapiv2
GOTESTSUM          := $(TOOLS)/gotestsum@$(GOTESTSUM_VERSION)/gotestsum

GAPI_MAP := Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations,Mgoogle/api/http.proto=google.golang.org/genproto/googleapis/api/annotations,Mprotoc-gen-openapiv2/options/annotations.proto=github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2/options,Mprotoc-gen-openapiv2/options/openapiv2.proto=github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2/options

# Where `make run` keeps its local registry and data.
RUN_DIR  ?= $(CURDIR)/var

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-12s %s\n", $$1, $$2}'

HTTP_ADDR ?= 127.0.0.1:8080
GRPC_ADDR ?= 127.0.0.1:9090

.PHONY: run
run: ## Generate a small shop, train, publish to ./var/registry, and serve gRPC + REST.
	@mkdir -p $(RUN_DIR)
	$(GO) run ./trainer/cmd/promo-trainer -store.dir=$(RUN_DIR)/registry -generate=small -once
	@test -f $(RUN_DIR)/tokens || { umask 077; printf 'dev-admin-%s admin dev-admin\n' "$$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" > $(RUN_DIR)/tokens; }
	@sh deploy/local/examples.sh $(RUN_DIR)/tokens $(HTTP_ADDR) $(GRPC_ADDR)
	$(GO) run ./server/cmd/promo-server -store.dir=$(RUN_DIR)/registry -auth.tokens-file=$(RUN_DIR)/tokens \
	  -auth.public=serving,read -grpc.addr=$(GRPC_ADDR) -http.addr=$(HTTP_ADDR) -log.format=text

.PHONY: build
build: ## Build every binary into ./bin.
	@mkdir -p bin
	$(GO) build -o bin/ ./registry/cmd/... ./trainer/cmd/... ./server/cmd/... ./gateway/cmd/...

.PHONY: test
test: $(GOTESTSUM) ## Run the whole test suite (starts a real S3 server on 127.0.0.1).
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GOTESTSUM) --format testname -- -count=1 -timeout 30m ./...); done

.PHONY: vet
vet: ## go vet every module.
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

.PHONY: bench
bench: ## Run the benchmarks and print their tables.
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchtime 1x ./...); done

.PHONY: bench-research
bench-research: ## The research protocols of docs/benchmarks.md (promo-bench): recommender on MovieLens 100K, uplift on generated shops.
	$(GO) run ./trainer/cmd/promo-bench ml100k
	$(GO) run ./trainer/cmd/promo-bench uplift -size medium -users 20000 -shops 5 -served.every 0

.PHONY: bench-load
bench-load: ## Serving load benchmark against the real server binary (prints the docs/benchmarks.md table).
	bash deploy/local/bench-load.sh 5

.PHONY: bench-load-large
bench-load-large: ## The serving load benchmark with a 100,000-item catalogue (generates and trains it: minutes).
	bash deploy/local/bench-load.sh 5 100000

.PHONY: lint
lint: vet ## gofmt, go vet, the product's imports, and fail when generated code is stale.
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@# The product never imports the benchmark tree (trainer/bench, promo-bench).
	@set -e; for m in $(MODULES); do \
	  pkgs=$$(cd $$m && $(GO) list ./... | grep -v -e '/trainer/bench' -e '/cmd/promo-bench'); \
	  bad=$$(cd $$m && $(GO) list -deps $$pkgs | grep '/trainer/bench' || true); \
	  if [ -n "$$bad" ]; then echo "$$m: product packages import the benchmark tree:"; echo "$$bad"; exit 1; fi; \
	done
	@$(MAKE) --no-print-directory proto
	@git diff --exit-code -- proto || (echo "generated code is stale: run 'make proto' and commit"; exit 1)

$(GOTESTSUM):
	GOBIN=$(dir $@) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)
$(PROTOC_GEN_GO):
	GOBIN=$(dir $@) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(dir $@) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(PROTOC_GEN_GW):
	GOBIN=$(dir $@) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(PROTOC_GEN_OAPI):
	GOBIN=$(dir $@) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)

.PHONY: proto
proto: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(PROTOC_GEN_GW) $(PROTOC_GEN_OAPI) ## Regenerate Go, gRPC, gateway and OpenAPI code.
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler golang-github-gogo-googleapis-dev"; exit 1; }
	@test -f $(GOOGLEAPIS_INCLUDE)/google/api/annotations.proto || { echo "google/api protos missing: apt-get install -y golang-github-gogo-googleapis-dev"; exit 1; }
	cd proto && protoc -I . -I $(GOOGLEAPIS_INCLUDE) -I $$($(GO) env GOMODCACHE)/github.com/grpc-ecosystem/grpc-gateway/v2@$(GRPC_GATEWAY_VERSION) \
	  --plugin=protoc-gen-go=$(PROTOC_GEN_GO) --go_out=. --go_opt=paths=source_relative,$(GAPI_MAP) \
	  --plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) --go-grpc_out=. --go-grpc_opt=paths=source_relative,$(GAPI_MAP) \
	  --plugin=protoc-gen-grpc-gateway=$(PROTOC_GEN_GW) --grpc-gateway_out=. --grpc-gateway_opt=paths=source_relative,$(GAPI_MAP) \
	  --plugin=protoc-gen-openapiv2=$(PROTOC_GEN_OAPI) --openapiv2_out=. --openapiv2_opt=$(GAPI_MAP) \
	  promo/v1/promo.proto
