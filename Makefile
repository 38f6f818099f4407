# penstock — GNU Makefile, the front door.
#
#   make                 build build/penstock
#   make check           install deps, build, run unit and integration tests
#   make unit            unit tests only (no servers)
#   make integration     integration tests only (real PostgreSQL, started by the tests)
#   make demo            install deps, build, run the demo
#   make bench           benchmarks against peers (bench/)
#   make install         install to $(DESTDIR)$(PREFIX)/bin
#   make SAN=address     AddressSanitizer + UBSan build in build/san-address/
#   make SAN=thread      ThreadSanitizer build in build/san-thread/
#
# CI=true adds -Werror.

CC       ?= cc
PREFIX   ?= /usr/local
PYTHON   ?= /usr/bin/python3
PKGS     := libpq jansson sqlite3 libmicrohttpd libcurl rdkafka
TEST_PKGS := cmocka

ifeq ($(SAN),)
BUILD    := build
SANFLAGS :=
else ifeq ($(SAN),address)
BUILD    := build/san-address
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SAN),thread)
BUILD    := build/san-thread
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
$(error SAN must be address or thread, not '$(SAN)')
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

# Truncation into bounded buffers is deliberate (messages, contexts), so
# -Wformat-truncation would only flag intended behaviour.
WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter -Wno-format-truncation
ifneq ($(CI),)
WARN     += -Werror
endif
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -pthread \
              -Iinclude -Isrc $(PKG_CFLAGS) -MMD -MP
LDLIBS   := $(PKG_LIBS) -pthread -lm

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# Test drivers used by the integration tests (each links the whole library).
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all check unit integration demo bench install deps clean
all: $(BUILD)/penstock

$(BUILD)/penstock: $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tools/%: tests/tools/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

deps:
	@bash scripts/install-deps.sh

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BUILD)/penstock $(TOOL_BINS)
	PENSTOCK_BIN=$(abspath $(BUILD)/penstock) PENSTOCK_TOOLS=$(abspath $(BUILD)/tools) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh $(abspath $(BUILD)/penstock)

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh $(abspath $(BUILD)/penstock)

install: $(BUILD)/penstock
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/penstock $(DESTDIR)$(PREFIX)/bin/penstock

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(UNIT_BINS:%=%.d) $(TOOL_BINS:%=%.d)
