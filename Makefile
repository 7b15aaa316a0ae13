# m2pg. `make run` and `make test` are the two commands of the README: both install what is
# missing first (Debian 12 packages), so they work on a fresh machine.

CC      ?= gcc
PKGS     = libevent jansson libpq
CFLAGS  ?= -O2 -g
CFLAGS  += -pthread -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Isrc
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
SAN_FLAGS  = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
PYTEST     = /usr/bin/python3 -m pytest

SRCS = $(wildcard src/*.c)
# The chart page: web/ and Debian's dygraphs, embedded in the binary by scripts/embed.py.
DYGRAPHS   = /usr/share/javascript/dygraphs
PAGE_FILES = $(sort $(wildcard web/*)) $(DYGRAPHS)/dygraph.min.js $(DYGRAPHS)/dygraph.min.css
OBJS = $(SRCS:src/%.c=build/%.o) build/page_assets.o
ASAN_OBJS = $(SRCS:src/%.c=build/asan/%.o) build/asan/page_assets.o
# Pure modules: unit tests link them alone (no libevent, no libpq).
PURE = build/tm.o build/uuid.o build/buf.o build/pgarr.o build/jsonw.o build/metric.o build/rollup.o build/nameset.o build/log.o build/query.o build/stats.o build/auth.o build/librato.o build/graphite.o
UNIT_TESTS = $(patsubst tests/unit/%.c,build/%,$(wildcard tests/unit/test_*.c))
# libFuzzer targets: each links the pure modules alone, like the unit tests.
FUZZ_CC    = clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all deps run test unit fuzz fuzz-smoke system system-asan bench bench-scale clean

all: m2pg

m2pg: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm

build/%.o: src/%.c $(wildcard src/*.h) | build
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -c -o $@ $<

build/asan/%.o: src/%.c $(wildcard src/*.h) | build/asan
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(PKG_CFLAGS) -c -o $@ $<

# $(wildcard) lets a missing dygraphs reach embed.py, which says which package to install.
build/page_assets.c: scripts/embed.py $(wildcard $(PAGE_FILES)) | build
	python3 scripts/embed.py $@ $(PAGE_FILES)

build/page_assets.o: build/page_assets.c src/page_assets.h
	$(CC) $(CFLAGS) -c -o $@ $<

build/asan/page_assets.o: build/page_assets.c src/page_assets.h | build/asan
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

build/asan/m2pg: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS) -lm

build/test_%: tests/unit/test_%.c tests/unit/unit.h $(PURE) | build
	$(CC) $(CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(PURE:build/%.o=src/%.c) $(shell pkg-config --cflags --libs cmocka jansson) -lm

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(PURE:build/%.o=src/%.c) $(wildcard src/*.h) | build/fuzz
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -o $@ $< $(PURE:build/%.o=src/%.c) $(shell pkg-config --cflags --libs jansson) -lm

build build/asan build/fuzz:
	mkdir -p $@

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory m2pg
	@scripts/run.sh

unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# Each target over a copy of its seed corpus in tests/fuzz/corpus/; a finding fails the target.
fuzz: $(FUZZ_TARGETS)
	@fail=0; for t in $(FUZZ_TARGETS); do tests/fuzz/run.sh $$t 60 || fail=1; done; exit $$fail

fuzz-smoke: $(FUZZ_TARGETS)
	@fail=0; for t in $(FUZZ_TARGETS); do tests/fuzz/run.sh $$t 5 || fail=1; done; exit $$fail

system: m2pg
	$(PYTEST) tests/system -q

system-asan: build/asan/m2pg
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		M2PG_BIN=$(CURDIR)/build/asan/m2pg $(PYTEST) tests/system -q

# The two system suites run at once (scripts/system-both.sh), each built first.
test: deps
	@$(MAKE) --no-print-directory unit fuzz-smoke m2pg build/asan/m2pg
	@scripts/system-both.sh

bench: deps
	@$(MAKE) --no-print-directory m2pg
	@bench/run.sh

# m2pg on 14 days of 1,000 series (20 million rows per database): reads, gc, repair, ingest.
bench-scale: deps
	@$(MAKE) --no-print-directory m2pg
	@bench/scale.sh

clean:
	rm -rf build m2pg

-include $(OBJS:.o=.d)
