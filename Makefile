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

.PHONY: build static deps kernel demo test unit e2e vm clean fuzz bench install install-files uninstall

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

# Server benchmark against nbdkit, nbd-server, qemu-nbd (docs/performance.md).
# make bench BENCH_ARGS="--storm 256"; BENCH_QUICK=1 make bench for a smoke run.
bench: build
	scripts/bench.sh $(BENCH_ARGS)

# libFuzzer over the handshake, request gate, client handshake, config parsers and decoders
# (swiftc -sanitize=fuzzer,address); FUZZ_SECONDS=600 make fuzz for a longer run.
fuzz: deps
	scripts/fuzz.sh

# Installs nbdboot, the static station binaries and the initramfs-tools and
# dracut hooks (docs/initramfs.md). DESTDIR for staging.
DESTDIR ?=
HOOKS := initramfs/hooks
install: build static
	$(MAKE) install-files

install-files:
	install -D -m 755 $(NBDBOOT) $(DESTDIR)/usr/bin/nbdboot
	install -D -m 755 $(STATIC)/init $(DESTDIR)/usr/lib/nbdboot/init
	install -D -m 755 $(STATIC)/nbd-client $(DESTDIR)/usr/lib/nbdboot/nbd-client
	install -D -m 644 $(HOOKS)/nbdboot-lib.sh $(DESTDIR)/usr/share/nbdboot/nbdboot-lib.sh
	install -D -m 755 $(HOOKS)/initramfs-tools/hooks/nbdboot $(DESTDIR)/usr/share/initramfs-tools/hooks/nbdboot
	install -D -m 755 $(HOOKS)/initramfs-tools/scripts/local-top/nbdboot $(DESTDIR)/usr/share/initramfs-tools/scripts/local-top/nbdboot
	install -d $(DESTDIR)/usr/lib/dracut/modules.d/95nbdboot
	install -m 755 $(HOOKS)/dracut/95nbdboot/*.sh $(DESTDIR)/usr/lib/dracut/modules.d/95nbdboot/
	install -D -m 644 $(HOOKS)/dracut/50-nbdboot.conf $(DESTDIR)/usr/lib/dracut/dracut.conf.d/50-nbdboot.conf

uninstall:
	rm -f $(DESTDIR)/usr/bin/nbdboot $(DESTDIR)/usr/lib/nbdboot/init $(DESTDIR)/usr/lib/nbdboot/nbd-client \
	  $(DESTDIR)/usr/share/nbdboot/nbdboot-lib.sh $(DESTDIR)/usr/share/initramfs-tools/hooks/nbdboot \
	  $(DESTDIR)/usr/share/initramfs-tools/scripts/local-top/nbdboot $(DESTDIR)/usr/lib/dracut/dracut.conf.d/50-nbdboot.conf
	rm -rf $(DESTDIR)/usr/lib/dracut/modules.d/95nbdboot
	-rmdir $(DESTDIR)/usr/lib/nbdboot $(DESTDIR)/usr/share/nbdboot

clean:
	rm -rf .build
