# nbdboot: the two commands a newcomer types are `make demo` and `make test`.
# Both install what they need first (apt packages, Debian's kernel package).
SHELL := /bin/bash
.DEFAULT_GOAL := build

SWIFT_CONFIG ?= release
NBDBOOT := .build/$(SWIFT_CONFIG)/nbdboot
STATIC := .build/static

# Sources of the static station binaries, compiled as one Embedded Swift module each.
CLIENT_DIRS := Sources/NBDWire Sources/LinuxSys Sources/NBDClientCore Sources/StationClient
INIT_DIRS := Sources/NBDWire Sources/LinuxSys Sources/BootCore Sources/StationInit
CLIENT_SRC := $(wildcard $(addsuffix /*.swift,$(CLIENT_DIRS))) Sources/CShims/include/shim.h Sources/CShims/include/shim_client.h
INIT_SRC := $(wildcard $(addsuffix /*.swift,$(INIT_DIRS))) Sources/CShims/include/shim.h Sources/CShims/include/shim_init.h

.PHONY: build static deps kernel demo test unit e2e vm clean fuzz

deps:
	@scripts/deps.sh

build: deps
	swift build -c $(SWIFT_CONFIG)

$(STATIC)/nbd-client: $(CLIENT_SRC) scripts/build-static.sh Sources/StaticRuntime/runtime.c
	@mkdir -p $(STATIC)
	scripts/build-static.sh $@ $(CLIENT_DIRS)

$(STATIC)/init: $(INIT_SRC) scripts/build-static.sh Sources/StaticRuntime/runtime.c
	@mkdir -p $(STATIC)
	scripts/build-static.sh $@ $(INIT_DIRS)

static: deps $(STATIC)/nbd-client $(STATIC)/init
	@for f in $(STATIC)/nbd-client $(STATIC)/init; do \
	  printf '%-24s %7d bytes  %s\n' "$$f" "$$(stat -c %s $$f)" "$$(file -b $$f | cut -d, -f1,4)"; done

# Debian's kernel package, downloaded and unpacked into a cache outside the repo.
kernel: deps
	@scripts/kernel.sh

demo: build static kernel
	scripts/demo.sh

# Everything: Swift unit tests, end-to-end tests with real peers, QEMU stations.
# Ends with one line: N passed, N failed.
test: build static kernel
	scripts/test.sh

unit: deps
	scripts/test.sh --only unit

# libFuzzer over the handshake, request gate, client handshake, config parsers and decoders
# (swiftc -sanitize=fuzzer,address); FUZZ_SECONDS=600 make fuzz for a longer run.
fuzz: deps
	scripts/fuzz.sh

clean:
	rm -rf .build
