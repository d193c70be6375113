# Thin wrapper around Meson/Ninja.
#   make         build build/ferry
#   make demo    install missing Debian packages, build, dump and restore a sample program
#   make check   every test (unit tests also under ASan+UBSan, workloads, end-to-end)
#   make bench   benchmarks, one JSON object per figure
BUILD ?= build
ASAN_BUILD ?= build-asan
DEB_PACKAGES = meson ninja-build pkg-config gcc clang protobuf-c-compiler libprotobuf-c-dev \
	libcmocka-dev libxxhash-dev nettle-dev libclang-rt-14-dev libbpf-dev bpftool python3 iproute2 \
	procps util-linux
SHELL := /bin/bash

.PHONY: all deps demo check bench clean unit

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing (run make as root to install them)"; exit 1; fi; \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) >/dev/null

$(ASAN_BUILD)/build.ninja: | deps
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

demo: all
	tests/demo.sh $(BUILD)

check: all $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) >/dev/null
	tests/run.sh $(BUILD) $(ASAN_BUILD)

bench:
	$(MAKE) all >&2
	bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
