# hamqtt build. One GNU Makefile, no configure step.
#   make            build build/hamqttd and tools
#   make run        install deps, build, start one node on etc/hamqtt.conf
#   make test       install deps, build, run unit + integration suites (the plain
#                   build's integration suite with 2, 1 and 4 workers per broker),
#                   then again under ASan+UBSan, and the integration suite under TSan
#                   (less the single-node conformance files: conftest.py NOT_UNDER_TSAN).
#                   Brokers run on the local (LMDB) store, except under ASan where
#                   those that do not choose a store use memory: LMDB under ASan costs
#                   5-8 ms per transaction and made timing-bound tests flaky; the
#                   store's own tests (test_33, test_35..39) still run it there
#   make bench      side-by-side benchmark with Mosquitto (scripts/bench.sh)
#   make bench-recovery  restart time with 10,000 offline sessions (also in make bench)
#   make SAN=asan|tsan   sanitizer build into build-asan/ or build-tsan/
#   make fuzz       libFuzzer targets (tests/fuzz/), FUZZ_TIME seconds each
#   make CC=clang   clang build
#   make deb        build/hamqtt_<version>_<arch>.deb (packaging/)

CC ?= gcc
SAN ?=
BUILD ?= build$(if $(SAN),-$(SAN))

WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc -pthread -fno-strict-aliasing
LDFLAGS += -pthread
LDLIBS := -lm -lmicrohttpd -lcjson -lssl -lcrypto -llmdb -lhiredis
# the HTTP authentication hook (src/auth/auth_http.c) and the JWKS URL fetch
# (auth_jwt_fetch.c) are libcurl clients; libjwt verifies JWT signatures
LDLIBS += -lcurl -ljwt
LDLIBS += -lwslay
# DNS SRV discovery (src/cluster/clu_discover.c): res_nquery and ns_parserr
LDLIBS += -lresolv
# the message archive's MariaDB/MySQL backend (src/archive/arc_mysql*.c):
# the MariaDB client library, headers in their own directory
CFLAGS += $(shell pkg-config --cflags libmariadb 2>/dev/null)
LDLIBS += $(shell pkg-config --libs libmariadb 2>/dev/null || echo -lmariadb)

ifeq ($(SAN),)
  # the shipped binaries get Debian's hardening flags (dpkg-buildflags with
  # hardening=+all; lintian checks the .deb for them): checked libc calls,
  # stack protector, read-only relocations bound at start
  CFLAGS += -D_FORTIFY_SOURCE=2 -fstack-protector-strong -Wformat -Werror=format-security
  LDFLAGS += -Wl,-z,relro -Wl,-z,now
endif
ifeq ($(SAN),asan)
  # float-cast-overflow: clang's "undefined" has it, gcc's not (a JSON number
  # of 1e300 cast to int64_t was found by fuzz_http, see test_fuzz_found.c)
  CFLAGS += -O1 -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow
  LDFLAGS += -fsanitize=address,undefined,float-cast-overflow
endif
ifeq ($(SAN),fuzz)
  # libFuzzer (clang only): the library instrumented for coverage, harnesses
  # in tests/fuzz/ linked with the fuzzer's main
  CFLAGS += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
  CFLAGS += -O1 -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=thread
endif

LIB_SRC := $(shell find src -name '*.c' ! -name main.c | sort)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libhamqtt.a

# The dashboard (ARCHITECTURE.md "The dashboard"): every file under web/ gzip'd
# into one generated C source (not committed) that joins the library; zlib
# inflates for a client without gzip. The directories are prerequisites too,
# so a file removed from web/ regenerates the table. No npm, no network.
WEB_FILES := $(shell find web 2>/dev/null | sort)
ASSETS_C := $(BUILD)/gen/http_assets_gen.c
ASSETS_O := $(BUILD)/obj/gen/http_assets_gen.o
LIB_OBJ += $(ASSETS_O)
LDLIBS += -lz
$(ASSETS_C): scripts/embed_assets.py $(WEB_FILES)
	@mkdir -p $(dir $@)
	$(Q)python3 scripts/embed_assets.py web $@
$(ASSETS_O): $(ASSETS_C) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $(BUILD) $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The OpenAPI document served at /api-docs (src/http/http_apidocs.c): the same
# generator, its own table, so the document stays out of the UI's size budget.
APIDOCS_FILES := $(shell find src/http/apidocs 2>/dev/null | sort)
APIDOCS_C := $(BUILD)/gen/http_apidocs_gen.c
APIDOCS_O := $(BUILD)/obj/gen/http_apidocs_gen.o
LIB_OBJ += $(APIDOCS_O)
$(APIDOCS_C): scripts/embed_assets.py $(APIDOCS_FILES)
	@mkdir -p $(dir $@)
	$(Q)python3 scripts/embed_assets.py --table http_apidocs src/http/apidocs $@
$(APIDOCS_O): $(APIDOCS_C) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $(BUILD) $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# every tools/<name>/ with C sources becomes build/hamqtt-<name>
TOOLS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tools/*/*.c)))))
TOOL_BINS := $(TOOLS:%=$(BUILD)/hamqtt-%)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_TIME ?= 60
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/hamqttd $(TOOL_BINS)

Q := $(if $(V),,@)

# A change of compiler or flags (SAN, CFLAGS, the hardening flags above)
# rebuilds every object: the stamp's text changes only then.
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW = $(CC) $(CFLAGS) | $(LDFLAGS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@
FORCE:

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $(BUILD) $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/hamqttd: $(BUILD)/obj/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# only the admin CLI talks HTTP as a client
$(BUILD)/hamqtt-ctl: LDLIBS += -lcurl

# each tool is every .c under tools/<name>/, linked with the library
# objects of the tools are intermediate files to make (a pattern's
# prerequisites): without this, make deletes them after each build and the
# next `make all` (e.g. the sanitizer passes' second invocation) rebuilds them
.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/hamqtt-%: $$(addprefix $(BUILD)/obj/,$$(subst .c,.o,$$(wildcard tools/$$*/*.c))) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

# make fuzz [FUZZ_TIME=seconds per target] [FUZZ_TARGETS="fuzz_a fuzz_b"]: build
# every tests/fuzz/ harness with clang + libFuzzer + ASan/UBSan and run each
# (or the named ones) for a bounded time; the corpora grow in
# build-fuzz/corpus/ across runs, seeded read-only from tests/fuzz/corpus/<target>/
# when it exists (small hand-made inputs that reach deep paths at once), with
# tests/fuzz/<target>.dict as libFuzzer's dictionary when there is one.
# A crash fails the target.
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz/%.c=%)
fuzz: deps
	$(MAKE) SAN=fuzz CC=clang fuzz-bins
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus/$$t; echo "== fuzz $$t ($(FUZZ_TIME) s)"; \
		seeds=; if [ -d tests/fuzz/corpus/$$t ]; then seeds=tests/fuzz/corpus/$$t; fi; \
		dict=; if [ -f tests/fuzz/$$t.dict ]; then dict=-dict=tests/fuzz/$$t.dict; fi; \
		if ! build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_TIME) -artifact_prefix=build-fuzz/ $$dict \
			build-fuzz/corpus/$$t $$seeds > build-fuzz/$$t.log 2>&1; then \
			tail -n 40 build-fuzz/$$t.log; exit 1; fi; \
		grep -E "^#[0-9]+.*DONE" build-fuzz/$$t.log | tail -n 1; done

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

deps:
	@scripts/deps.sh

run: deps all
	@mkdir -p etc/data
	./$(BUILD)/hamqttd -c etc/hamqtt.conf

# TEST_JOBS: test files run in parallel. Most tests wait (keep-alives, take-
# overs, servers starting) rather than compute: with 4 the plain and ASan passes
# keep the 2 cores about half busy; TSan (5-15x the CPU) runs 3.
TEST_JOBS ?= 4
integration: all
	/usr/bin/python3 tests/integration/run.py --build $(BUILD) -j $(TEST_JOBS)

# every broker of the suite runs node.workers = HAMQTT_TEST_WORKERS (default 2):
# one worker and four workers exercise the single-loop and cross-worker paths.
# Each test file runs in one of the two (HAMQTT_TEST_SHARD, conftest.py), to keep
# CI within 30 minutes; `make integration-workers-full` runs both on every file.
integration-workers: all
	HAMQTT_TEST_PASS=workers HAMQTT_TEST_SHARD=0/2 HAMQTT_TEST_WORKERS=1 /usr/bin/python3 tests/integration/run.py --build $(BUILD) -j $(TEST_JOBS)
	HAMQTT_TEST_PASS=workers HAMQTT_TEST_SHARD=1/2 HAMQTT_TEST_WORKERS=4 /usr/bin/python3 tests/integration/run.py --build $(BUILD) -j $(TEST_JOBS)

integration-workers-full: all
	HAMQTT_TEST_PASS=workers HAMQTT_TEST_WORKERS=1 /usr/bin/python3 tests/integration/run.py --build $(BUILD)
	HAMQTT_TEST_PASS=workers HAMQTT_TEST_WORKERS=4 /usr/bin/python3 tests/integration/run.py --build $(BUILD)

test: deps
	$(MAKE) all unit
	$(MAKE) integration
	$(MAKE) integration-workers
	$(MAKE) SAN=asan all unit
	HAMQTT_TEST_STORE=memory $(MAKE) SAN=asan integration
	$(MAKE) SAN=tsan all
	HAMQTT_TEST_PASS=tsan $(MAKE) SAN=tsan TEST_JOBS=3 integration
	$(MAKE) fuzz FUZZ_TIME=3

bench: deps all
	scripts/bench.sh

# restart of a node holding 10,000 offline sessions / 1,000,000 queued messages
bench-recovery: all
	/usr/bin/python3 scripts/bench_recovery.py

# Chaos test (tests/chaos/chaos.py): SIGKILL nodes under load behind HAProxy and count
# what persistent sessions lost. `chaos`: the long variants of issue 9 (redis with 3 nodes,
# local with 1; QoS 1 and 2; MQTT 3.1.1 and 5; 60 s of load each, about 25 min in all);
# every variant runs, the target fails if any did. QoS 2 runs at 5 msg/s per publisher:
# all 40 paho clients share one Python process, which at 10 msg/s (4,000 QoS 2 deliveries
# a second, four packets each) used 94% of a core and fell behind the broker (chaos.py
# prints its own CPU). `chaos-short`: 2 kills in 20 s with fewer clients: redis/3 nodes
# and local/1 node, each at QoS 1 and at QoS 2 (about 4 min).
CHAOS = /usr/bin/python3 tests/chaos/chaos.py --build $(BUILD)
CHAOS_SHORT_ARGS = --pubs 5 --subs 5 --rate 10 --duration 20 --kill-every 7 \
	--restart-after 3 --drain 20

chaos: all
	@failed=0; for sn in redis:3 local:1; do for qos in 1 2; do for v in 3.1.1 5; do \
		rate=$$((qos == 2 ? 5 : 10)); \
		$(CHAOS) --store $${sn%:*} --nodes $${sn#*:} --qos $$qos --mqtt $$v --rate $$rate \
			|| failed=$$((failed + 1)); done; done; done; \
		echo "chaos: $$failed of 8 variants failed"; test $$failed -eq 0

chaos-short: all
	@failed=0; \
	$(CHAOS) --store redis --nodes 3 --qos 1 --mqtt 3.1.1 $(CHAOS_SHORT_ARGS) || failed=1; \
	$(CHAOS) --store local --nodes 1 --qos 1 --mqtt 5 $(CHAOS_SHORT_ARGS) || failed=1; \
	$(CHAOS) --store local --nodes 1 --qos 2 --mqtt 5 $(CHAOS_SHORT_ARGS) --pubs 10 --subs 10 \
		--rate 20 --drain 60 || failed=1; \
	$(CHAOS) --store redis --nodes 3 --qos 2 --mqtt 3.1.1 $(CHAOS_SHORT_ARGS) || failed=1; \
	test $$failed -eq 0

# make deb: build/hamqtt_<version>_<arch>.deb (packaging/mkdeb.sh,
# docs/architecture/packaging.md) from the plain build's binaries: always
# build/ without sanitizers, whatever SAN says (needs make deps first).
deb:
	$(MAKE) SAN= BUILD=build all
	packaging/mkdeb.sh build
# issue 12: the message archive's PostgreSQL backend (src/archive/arc_pg.c)
CFLAGS += -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
LDLIBS += -lpq
# (recipes expand CFLAGS and LDLIBS when they run: set here, they apply to every rule)
# the archive's long outage: the database down 30 s under load (test_60, about 1 min)
test-archive-long: all
	HAMQTT_ARCHIVE_LONG=1 /usr/bin/python3 tests/integration/run.py --build $(BUILD) \
		-k test_database_outage_30s_loses_nothing

clean:
	rm -rf build build-asan build-tsan build-fuzz

.PHONY: all unit deps run integration integration-workers integration-workers-full test bench bench-recovery chaos chaos-short clean \
	fuzz fuzz-bins deb FORCE test-archive-long

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
