# stockd -- plain GNU make. `make`, `make test`, `make SANITIZE=address,undefined test`,
# `make run`, `make install PREFIX=/usr/local` (library, binaries and the
# operator's kit of ops/), `make fuzz`, `make bench`,
# `make soak` (1000 kills -9, then the fault suites round after round).
#
# Sources are found by folder, so a new file in src/<module>/ joins the build
# without editing this file:
#   libstock   src/lib src/core src/journal src/backend   -> libstock.a, libstock.so
#   stockd     src/proto src/server                        -> stockd
#   tools      tools/<name>.c or tools/<name>/*.c          -> one binary each,
#                                                             linking src/proto too
#   tests      tests/unit/test_*.c                         -> one cmocka binary each
#              tests/conformance/*.c                       -> conformance (takes a URI)
#              tests/system/*.c                            -> one helper binary each
#   bench      bench/*.c                                   -> one binary each
#   fuzz       tests/fuzz/fuzz_*.c                         -> libFuzzer targets (clang)

PREFIX   ?= /usr/local
SYSCONFDIR ?= /etc
CC       ?= cc
SANITIZE ?=
PKGS     := libuv jansson libpq hiredis libxxhash openssl liburing lmdb
# The NATS client links only into the programs that talk to a broker.
NATS_PKG := libnats

ifeq ($(SANITIZE),)
BUILD    := build
OPTFLAGS := -O2
else
BUILD    := build/san
OPTFLAGS := -O1 -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CFLAGS_ALL  = -std=c11 -D_GNU_SOURCE -g $(OPTFLAGS) -Wall -Wextra -Werror \
              -fPIC -pthread -Iinclude -Isrc -I$(BUILD)/gen -MMD -MP \
              $(shell pkg-config --cflags $(PKGS) $(NATS_PKG)) $(CFLAGS)
LDFLAGS_ALL = $(OPTFLAGS) -pthread $(LDFLAGS)
LIBS        = $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lm

# The version lives in include/stock.h only; libstock.pc and the soname
# take it from there.
version_part   = $(shell sed -n 's/^[#]define STOCK_VERSION_$(1) *\([0-9][0-9]*\).*/\1/p' include/stock.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION       := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)

LIB_SRC    := $(wildcard src/lib/*.c src/core/*.c src/journal/*.c src/backend/*.c)
SERVER_SRC := $(wildcard src/proto/*.c src/server/*.c)
SERVER_MAIN:= src/server/main.c
TOOL_NAMES := $(sort $(basename $(notdir $(wildcard tools/*.c))) $(notdir $(patsubst %/,%,$(dir $(wildcard tools/*/*.c)))))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
CONF_SRC   := $(wildcard tests/conformance/*.c)
SYS_SRC    := $(wildcard tests/system/*.c)
BENCH_SRC  := $(wildcard bench/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJ     := $(call obj,$(LIB_SRC))
# A script in src/<module>/NAME.lua becomes $(BUILD)/gen/<module>/NAME.inc, its
# bytes as a C initializer list, for a library file to embed with #include.
EMBED_INC   := $(patsubst src/%.lua,$(BUILD)/gen/%.inc,$(wildcard src/*/*.lua))
SERVER_OBJ  := $(call obj,$(filter-out $(SERVER_MAIN),$(SERVER_SRC)))
PROTO_OBJ   := $(call obj,$(wildcard src/proto/*.c))
STATIC_LIB  := $(BUILD)/libstock.a
SHARED_LIB  := $(BUILD)/libstock.so
PKG_CONFIG  := $(BUILD)/libstock.pc
STOCKD      := $(BUILD)/stockd
TOOLS       := $(addprefix $(BUILD)/,$(TOOL_NAMES))
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
CONF_BIN    := $(if $(CONF_SRC),$(BUILD)/tests/conformance)
SYS_BINS    := $(patsubst tests/system/%.c,$(BUILD)/tests/%,$(SYS_SRC))
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
PRELOADS    := $(patsubst tests/preload/%.c,$(BUILD)/tests/%.so,$(wildcard tests/preload/*.c))
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

.PHONY: all deps test soak run install install-ops fuzz bench clean
# Keep the objects of test and bench binaries (pattern-rule intermediates):
# deleting them made every make rebuild them.
.SECONDARY:
all: $(STATIC_LIB) $(SHARED_LIB) $(PKG_CONFIG) $(if $(wildcard $(SERVER_MAIN)),$(STOCKD)) $(TOOLS)

tests: all $(UNIT_BINS) $(CONF_BIN) $(SYS_BINS) $(BENCH_BINS) $(PRELOADS)

# Libraries the fault suites preload into stockd, built without the
# sanitizers (tests/preload/no_uring.c says why).
$(BUILD)/tests/%.so: tests/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -o $@ $<

deps:
	@scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/gen/%.inc: src/%.lua
	@mkdir -p $(dir $@)
	xxd -i < $< > $@

$(LIB_OBJ): | $(EMBED_INC)

$(STATIC_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libstock.so.$(VERSION_MAJOR) -o $@ $^ $(LDFLAGS_ALL) $(LIBS)

# The same text for the build folder (the tests read it) and for install.
pkg_config_text = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' libstock.pc.in

$(PKG_CONFIG): libstock.pc.in include/stock.h
	@mkdir -p $(dir $@)
	$(pkg_config_text) > $@

$(STOCKD): $(call obj,$(SERVER_MAIN)) $(SERVER_OBJ) $(STATIC_LIB)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS)

# A tool is tools/NAME.c or every .c in tools/NAME/; the protocol codecs
# (src/proto) are there for the tools that speak stockd's formats.
.SECONDEXPANSION:
$(TOOLS): $(BUILD)/%: $$(call obj,$$(wildcard tools/%.c tools/%/*.c)) $(PROTO_OBJ) $(STATIC_LIB)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS)

# The programs that talk to a NATS broker (docs/intake.md, docs/events.md).
NATS_BINS := $(BUILD)/stockintake $(BUILD)/stockevents $(BUILD)/stockctl $(BUILD)/tests/intake_client \
             $(BUILD)/tests/events_client
$(NATS_BINS): LIBS += $(shell pkg-config --libs $(NATS_PKG))
# The test client pulls as stockintake does (tools/stockintake/pull.h).
$(BUILD)/tests/intake_client: $(BUILD)/obj/tools/stockintake/pull.o
$(BUILD)/obj/tests/system/intake_client.o: CFLAGS_ALL += -Itools

# Unit tests may test server-side modules too, so they link them.
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(SERVER_OBJ) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS) -lcmocka

$(BUILD)/tests/conformance: $(call obj,$(CONF_SRC)) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS) -lcmocka

$(SYS_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/system/%.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS)

# The fault_* helpers arm libfiu's failure points themselves (they run under
# fiu-run -x, whose preload library shares this libfiu); nothing else links it.
# They also route libstock's own malloc, calloc and realloc through a failure
# point of theirs (--wrap), which works under ASan too, where the preload's
# allocator wrappers cannot run, and readdir64 (see fault_store.c).
$(BUILD)/tests/fault_%: LIBS += $(shell pkg-config --libs libfiu) \
    -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=readdir64

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS)

# libFuzzer targets link the protocol and library code built with clang,
# compiled once for all targets (fuzzer-no-link: instrumented, no main).
FUZZ_FLAGS  = -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc -I$(BUILD)/gen \
              $(shell pkg-config --cflags $(PKGS))
FUZZ_OBJS  := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC) $(filter-out $(SERVER_MAIN),$(SERVER_SRC)))
build/fuzz/obj/%.o: %.c | $(EMBED_INC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

fuzz: $(FUZZ_BINS)

bench: all $(BENCH_BINS)

# deps runs first even under -j: the build needs the packages it installs.
test: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) tests/run

# Not in CI: SOAK_KILL_ROUNDS kills -9 (default 1000), then the crash and
# fault suites again and again with fresh seeds for SOAK_SECONDS (tests/soak
# says what it runs).
soak: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) tests/soak

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p stockd-data
	$(STOCKD) --store ./stockd-data

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	           $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/stock.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/libstock.so.$(VERSION)
	ln -sf libstock.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libstock.so.$(VERSION_MAJOR)
	ln -sf libstock.so.$(VERSION_MAJOR) $(DESTDIR)$(PREFIX)/lib/libstock.so
	install -m 755 $(filter-out $(STATIC_LIB) $(SHARED_LIB),$(wildcard $(STOCKD) $(TOOLS))) $(DESTDIR)$(PREFIX)/bin/
	$(pkg_config_text) > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libstock.pc
	$(MAKE) --no-print-directory install-ops

# The operator's kit (ops/, docs/operations.md "Running under systemd")
# where Debian's systemd, Prometheus and Grafana look for it. The settings
# file is installed only if none is there: an admin's edits stay.
UNIT_DIR     = $(PREFIX)/lib/systemd/system
SYSUSERS_DIR = $(PREFIX)/lib/sysusers.d
DOC_DIR      = $(PREFIX)/share/doc/stockd
DASHBOARD_DIR= $(PREFIX)/share/stockd/grafana
install-ops:
	install -d $(DESTDIR)$(UNIT_DIR) $(DESTDIR)$(SYSUSERS_DIR) $(DESTDIR)$(DOC_DIR) \
	           $(DESTDIR)$(DASHBOARD_DIR) $(DESTDIR)$(SYSCONFDIR)/stockd \
	           $(DESTDIR)$(SYSCONFDIR)/prometheus/rules \
	           $(DESTDIR)$(SYSCONFDIR)/grafana/provisioning/dashboards
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@DOCDIR@|$(DOC_DIR)|g' ops/systemd/stockd.service \
	    > $(DESTDIR)$(UNIT_DIR)/stockd.service
	install -m 644 ops/systemd/stockd.sysusers $(DESTDIR)$(SYSUSERS_DIR)/stockd.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/stockd/stockd.conf ] || \
	    install -m 640 ops/systemd/stockd.conf $(DESTDIR)$(SYSCONFDIR)/stockd/stockd.conf
	install -m 644 docs/operations.md $(DESTDIR)$(DOC_DIR)/
	install -m 644 ops/prometheus/stockd-alerts.yml $(DESTDIR)$(SYSCONFDIR)/prometheus/rules/
	install -m 644 ops/grafana/stockd-dashboard.json $(DESTDIR)$(DASHBOARD_DIR)/
	sed -e 's|@DASHBOARD_DIR@|$(DASHBOARD_DIR)|g' ops/grafana/provisioning.yaml \
	    > $(DESTDIR)$(SYSCONFDIR)/grafana/provisioning/dashboards/stockd.yaml

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj build/fuzz/obj -name '*.d' 2>/dev/null)
