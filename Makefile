# penstock — GNU Makefile, the front door.
#
#   make                 build build/penstock
#   make check           install deps, build, run unit and integration tests
#   make unit            unit tests only (no servers)
#   make integration     integration tests only (real PostgreSQL, started by the tests)
#   make demo            install deps, build, run the demo
#   make bench           benchmarks against peers (bench/)
#   make fuzz            every tests/fuzz/fuzz_*.c for FUZZ_SECONDS (60) each (FUZZ=NAME: one)
#   make fuzz-replay     build every fuzz harness and run each input of its
#                        corpus once (part of check: the corpora are regression tests)
#   make chaos           randomized fault campaign for CHAOS_MINUTES (20);
#                        CHAOS_SEED=N replays a schedule (docs/chaos.md)
#   make install         binary, man pages, systemd unit, env example, bash
#                        completion, dashboards under $(DESTDIR)$(PREFIX)
#   make man             build/man/penstock.1 and penstock-spec.5 (scdoc)
#   make SAN=address     AddressSanitizer + UBSan build in build/san-address/
#   make SAN=thread      ThreadSanitizer build in build/san-thread/
#
# CI=true adds -Werror.

CC       ?= cc
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DOCDIR   ?= $(PREFIX)/share/doc/penstock
DATADIR  ?= $(PREFIX)/share/penstock
UNITDIR  ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SCDOC    ?= scdoc
PYTHON   ?= /usr/bin/python3
PKGS     := libpq jansson sqlite3 libmicrohttpd libcurl libmariadb zlib libcrypto rdkafka
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
# The status page's files, compiled in as arrays (server/console.h).
CONSOLE_FILES := $(sort $(wildcard src/server/console/*))
CONSOLE_C := $(BUILD)/gen/console_assets.c
CONSOLE_O := $(BUILD)/obj/gen/console_assets.o
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o) $(CONSOLE_O)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(CONSOLE_O)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# Test drivers used by the integration tests (each links the whole library).
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all check unit integration demo bench fuzz fuzz-replay chaos install man deps clean
all: $(BUILD)/penstock

$(BUILD)/penstock: $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(CONSOLE_C): $(CONSOLE_FILES) scripts/embed-assets.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-assets.sh $@ $(CONSOLE_FILES)

$(CONSOLE_O): $(CONSOLE_C)
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
	@$(MAKE) --no-print-directory fuzz-replay
	@$(MAKE) --no-print-directory integration

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh $(abspath $(BUILD)/penstock)

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh $(abspath $(BUILD)/penstock)

# The chaos campaign (docs/chaos.md): not a test and not part of check. It
# reads CHAOS_MINUTES, CHAOS_SEED, CHAOS_DIR, CHAOS_PGBENCH_TPS and
# CHAOS_ZOO_TPS from the environment (or the make command line).
chaos: deps
	@$(MAKE) --no-print-directory all
	PENSTOCK_BIN=$(abspath $(BUILD)/penstock) $(PYTHON) tests/chaos/chaos.py

# Man pages from their scdoc sources (docs/man/*.scd).
MAN_PAGES := build/man/penstock.1 build/man/penstock-spec.5
man: $(MAN_PAGES)

build/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	@command -v $(SCDOC) >/dev/null || { echo "make: $(SCDOC) is missing: bash scripts/install-deps.sh (or apt-get install scdoc)" >&2; exit 1; }
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@

# The unit runs the installed binary.
build/penstock.service: contrib/systemd/penstock.service.in
	@mkdir -p $(dir $@)
	sed 's|@BINDIR@|$(BINDIR)|g' $< > $@.tmp && mv $@.tmp $@

.PHONY: build/penstock.service
install: $(BUILD)/penstock $(MAN_PAGES) build/penstock.service
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	           $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(BASHCOMPDIR) \
	           $(DESTDIR)$(DATADIR)/grafana $(DESTDIR)$(DATADIR)/prometheus
	install -m 0755 $(BUILD)/penstock $(DESTDIR)$(BINDIR)/penstock
	install -m 0644 build/man/penstock.1 $(DESTDIR)$(MANDIR)/man1/penstock.1
	install -m 0644 build/man/penstock-spec.5 $(DESTDIR)$(MANDIR)/man5/penstock-spec.5
	install -m 0644 build/penstock.service $(DESTDIR)$(UNITDIR)/penstock.service
	install -m 0644 contrib/systemd/penstock.env.example $(DESTDIR)$(DOCDIR)/penstock.env.example
	install -m 0644 contrib/bash-completion/penstock $(DESTDIR)$(BASHCOMPDIR)/penstock
	install -m 0644 contrib/grafana/penstock.json $(DESTDIR)$(DATADIR)/grafana/penstock.json
	install -m 0644 contrib/prometheus/penstock-alerts.yml $(DESTDIR)$(DATADIR)/prometheus/penstock-alerts.yml

# Fuzzers: tests/fuzz/fuzz_NAME.c is built with clang's libFuzzer, ASan and
# UBSan against FUZZ_SRCS_fuzz_NAME only (the code it exercises, not all of
# src/ where that is practical), and run for FUZZ_SECONDS on a copy of
# tests/fuzz/corpus/NAME/; a finding (crash, sanitizer report, leak,
# timeout) fails the target and leaves its input in build/fuzz/;
# tests/fuzz/NAME.dict, when present, is its dictionary of tokens. Each source
# is compiled once into build/fuzz-obj/ and shared by the harnesses that link
# it. FUZZ=NAME (or a list) runs only those harnesses.
FUZZ_SECONDS ?= 60
FUZZ_CC  ?= clang
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -pthread -Iinclude -Isrc \
               $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
ifneq ($(FUZZ),)
FUZZ_RUN := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ))
else
FUZZ_RUN := $(FUZZ_BINS)
endif
FUZZ_SRCS_fuzz_binlog := $(sort $(wildcard src/source/mysql/binlog*.c)) src/util/buf.c src/util/error.c
FUZZ_LIBS_fuzz_binlog := $(shell pkg-config --libs zlib 2>/dev/null)
FUZZ_SRCS_fuzz_pgoutput := src/source/pg/pgoutput.c src/core/change.c src/core/schema.c src/sink/envelope.c src/sink/envelope_dbz.c \
                           src/util/buf.c src/util/json.c src/util/str.c src/util/error.c
FUZZ_LIBS_fuzz_pgoutput := $(shell pkg-config --libs jansson 2>/dev/null)
FUZZ_SRCS_fuzz_pgbinwalk := src/source/pg/pg_binwalk.c src/util/error.c
# The spec, URL, API and checkpoint readers reach the plugin registry (the
# engines' URL syntaxes and option declarations), so they link the library
# (with the status page's generated files, which the server part needs).
FUZZ_LIB_SRCS := $(LIB_SRCS) $(CONSOLE_C)
FUZZ_SRCS_fuzz_spec := $(FUZZ_LIB_SRCS)
FUZZ_LIBS_fuzz_spec := $(LDLIBS)
FUZZ_SRCS_fuzz_url := $(FUZZ_LIB_SRCS)
FUZZ_LIBS_fuzz_url := $(LDLIBS)
FUZZ_SRCS_fuzz_api := $(FUZZ_LIB_SRCS)
FUZZ_LIBS_fuzz_api := $(LDLIBS)
FUZZ_SRCS_fuzz_checkpoint := $(FUZZ_LIB_SRCS)
FUZZ_LIBS_fuzz_checkpoint := $(LDLIBS)

fuzz:
	@bash scripts/install-deps.sh
	@$(MAKE) --no-print-directory $(FUZZ_RUN)
	@set -e; for f in $(FUZZ_RUN); do \
	  n=$$(basename $$f); work=build/fuzz/corpus-$${n#fuzz_}; \
	  rm -rf $$work; mkdir -p $$work; cp tests/fuzz/corpus/$${n#fuzz_}/* $$work/; \
	  dict=tests/fuzz/$${n#fuzz_}.dict; [ -f $$dict ] && dict=-dict=$$dict || dict=; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 $$dict \
	      -print_final_stats=1 -artifact_prefix=build/fuzz/$$n- $$work; \
	done

# Every input of every corpus (the seeds, what long runs found, the inputs of
# fixed findings) run once through its harness, with its sanitizers: a harness
# that no longer builds or an input that fails again fails check.
fuzz-replay: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
	  n=$$(basename $$f); c=tests/fuzz/corpus/$${n#fuzz_}; \
	  echo "== $$n: $$(ls $$c | wc -l) inputs of $$c"; \
	  find $$c -type f -print0 | xargs -0 -n 200 $$f -timeout=10 -rss_limit_mb=2048 > build/fuzz/$$n-replay.log 2>&1 \
	    || { tail -40 build/fuzz/$$n-replay.log; echo "fuzz-replay: $$n failed on its corpus (log: build/fuzz/$$n-replay.log)"; exit 1; }; \
	done

build/fuzz-obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

# Objects are kept between builds (not make's intermediates).
.SECONDARY: $(patsubst %.c,build/fuzz-obj/%.o,$(FUZZ_LIB_SRCS))
fuzz_objs = $(patsubst %.c,build/fuzz-obj/%.o,$(FUZZ_SRCS_$(1)))

.SECONDEXPANSION:
build/fuzz/%: tests/fuzz/%.c $$(call fuzz_objs,$$*)
	@mkdir -p $(dir $@)
	@echo "$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $< ($(words $(call fuzz_objs,$*)) objects of build/fuzz-obj/)"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -o $@ $< $(call fuzz_objs,$*) $(FUZZ_LIBS_$*)

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(UNIT_BINS:%=%.d) $(TOOL_BINS:%=%.d)
-include $(LIB_SRCS:%.c=build/fuzz-obj/%.d) $(FUZZ_BINS:%=%.d)
