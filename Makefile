# cdeguard build. `make` builds build/cdeguard; `make run` and `make test` are the two
# set-up commands from the README (both install missing Debian/npm packages first).
#
#   make                 release build (gcc, -O2) in build/
#   make SAN=1           AddressSanitizer + UndefinedBehaviorSanitizer build (clang) in build-san/
#   make unit            cmocka unit tests          make integration   pytest suite
#   make test            deps, then unit + integration on the release build and on the SAN build
#   make fuzz            libFuzzer harnesses (FUZZ_SECONDS each)   make bench   bench/egress.sh + bench/llm.sh
#   make bench-llm       bench/llm.sh only (LLM gateway vs Portkey)
#   make lint            clang-format check, cppcheck, clang-tidy

VERSION := 0.1.0
SAN ?= 0
ifeq ($(SAN),1)
CC := clang
BUILD ?= build-san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
else
CC ?= gcc
BUILD ?= build
OPT := -O2 -g
LDSAN :=
endif
ifeq ($(CC),cc)
CC := gcc
endif

LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS := -D_GNU_SOURCE -DCDEGUARD_VERSION='"$(VERSION)"' -Isrc -I$(LLHTTP_INC)
CFLAGS := -std=c17 $(OPT) $(WARN) -MMD -MP
LDLIBS := -luv -lssl -lcrypto -lyaml -lhs -lpcre2-8 -lsqlite3 -lhiredis -lpthread -lm

SRCS := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJS := $(SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/builtin_rules.o
RULES := $(sort $(wildcard rules/*.yaml))
LLHTTP_OBJS := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
LIB := $(BUILD)/libcdeguard.a
BIN := $(BUILD)/cdeguard

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 60
PY := /usr/bin/python3
PYTEST := $(PY) -m pytest

.PHONY: all deps run unit integration test test-release test-san fuzz fuzz-build bench bench-llm lint format clean eval

all: $(BIN)

$(BIN): $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(LIB): $(OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The default inspection rules are compiled into the binary (tools/embed.c).
$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O1 $(LDSAN) -o $@ $<

$(BUILD)/gen/builtin_rules.c: $(RULES) $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $(RULES) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/builtin_rules.o: $(BUILD)/gen/builtin_rules.c
	$(CC) $(CPPFLAGS) -std=c17 $(OPT) -c -o $@ $<

# llhttp is compiled from Debian's node-llhttp sources, in strict mode; it is not our code,
# so it gets no -Werror.
$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 $(OPT) -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) -w -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

deps:
	@scripts/install-deps

run:
	@scripts/install-deps --run
	@$(MAKE) --no-print-directory all
	$(BIN) serve --config cdeguard.yaml

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BIN)
	CDEGUARD_BIN=$(abspath $(BIN)) $(PYTEST) -q tests/integration

test-release:
	@$(MAKE) --no-print-directory SAN=0 unit integration

test-san:
	@$(MAKE) --no-print-directory SAN=1 unit integration

test: deps
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-san

FUZZ_BUILD := build-fuzz
fuzz-build:
	@$(MAKE) --no-print-directory SAN=1 BUILD=$(FUZZ_BUILD) OPT="-O1 -g -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined" $(FUZZ_BUILD)/libcdeguard.a
	@set -e; for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	  echo "CC $$n"; clang $(CPPFLAGS) -std=c17 -O1 -g -fsanitize=address,undefined,fuzzer -fno-sanitize-recover=undefined -o $(FUZZ_BUILD)/$$n $$f $(FUZZ_BUILD)/libcdeguard.a $(LDLIBS); done

fuzz: deps fuzz-build
	@set -e; for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); mkdir -p fuzz/artifacts/$$n $(FUZZ_BUILD)/corpus/$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  dict=""; [ -f fuzz/$$n.dict ] && dict="-dict=fuzz/$$n.dict"; \
	  $(FUZZ_BUILD)/$$n -max_total_time=$(FUZZ_SECONDS) $$dict -artifact_prefix=fuzz/artifacts/$$n/ $(FUZZ_BUILD)/corpus/$$n fuzz/corpus/$$n; done

bench:
	@scripts/install-deps --bench
	@$(MAKE) --no-print-directory all
	bench/egress.sh
	bench/llm.sh

bench-llm:
	@scripts/install-deps --bench
	@$(MAKE) --no-print-directory all
	bench/llm.sh

# Precision/recall of the scanner on the two labelled corpora (a measurement, not a test).
eval: all
	CDEGUARD_BIN=$(abspath $(BIN)) $(PY) tests/corpus/evaluate.py
	@echo "== second corpus, written blind: tests/corpus2"
	CDEGUARD_BIN=$(abspath $(BIN)) $(PY) tests/corpus2/evaluate.py

lint:
	@scripts/install-deps --lint
	clang-format --dry-run -Werror $$(find src tests/unit fuzz -name '*.[ch]')
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	  --suppress=missingIncludeSystem --inline-suppr -Isrc -D_GNU_SOURCE src
	clang-tidy --quiet $(SRCS) src/main.c -- $(CPPFLAGS) -std=c17

format:
	clang-format -i $$(find src tests/unit fuzz -name '*.[ch]')

clean:
	rm -rf build build-san build-fuzz

-include $(OBJS:.o=.d) $(BUILD)/src/main.d
