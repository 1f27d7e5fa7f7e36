# pg_chime: PGXS build, tests and demo.
#
#   make            build the extension
#   make install    install it into the PostgreSQL that pg_config names
#   make test       every test suite; last line "N passed, M failed"
#   make test-ha    the Patroni test's long form: the leader cut off from etcd,
#                   with and without synchronous_mode (needs patroni, etcd-server)
#   make installcheck  pg_regress and the TAP tests only (not as root)
#   make demo       a throwaway cluster with example jobs
#   make fuzz       run the schedule parser fuzzer (FUZZ_SECONDS, default 60)
#   make bench      the benchmarks of SPEC section 9 (BENCH=quick: under 3 minutes)

EXTENSION   = pg_chime
# The one place the version is set; pg_chime.control and META.json are
# made from their .in files with it.
EXTVERSION  = 1.1
# PGXN's versions are SemVer: 1.1 is 1.1.0
EXTSEMVER   = $(EXTVERSION).0

MODULE_big  = pg_chime
OBJS        = src/pg_chime.o src/clock.o src/schedule.o src/occurrence.o src/zone_pg.o \
              src/api.o src/job_api.o src/job_check.o src/job_run.o src/job_def.o \
              src/next_runs.o src/explain.o src/secret.o src/template.o src/shared.o src/locks.o src/run_log.o \
              src/run_outcome.o \
              src/scheduler.o src/sched_tx.o src/sched_jobs.o src/sched_fire.o \
              src/sched_start.o src/sched_retry.o src/sched_record.o src/sched_retention.o src/sched_keys.o \
              src/dispatch.o src/dispatch_io.o src/dispatch_http.o \
              src/executor.o src/exec_queue.o src/exec_marker.o src/exec_session.o \
              src/exec_statements.o src/exec_commit.o \
              src/http.o src/http_policy.o src/http_request.o src/http_response.o
DATA        = $(wildcard extension/pg_chime--*.sql) extension/pg_chime--1.0.control
EXTRA_CLEAN = pg_chime.control.tmp META.json.tmp

REGRESS     = schedule_api errors next_runs dst runs keys commands stored_rows status explain run_context bounds pg_cron_compat
REGRESS_OPTS = --temp-config=test/regress.conf --temp-instance=tmp_check --load-extension=pg_chime
# make installcheck runs the TAP tests too (as a user initdb accepts)
TAP_TESTS   = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -Isrc -DCHIME_EXTVERSION='"$(EXTVERSION)"'
SHLIB_LINK  = -lcurl
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
              -Wno-missing-field-initializers -Wno-clobbered
ifdef WERROR
PG_CFLAGS  += -Werror
endif

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS knows no header dependencies: any header change rebuilds every object
$(OBJS) $(OBJS:.o=.bc): $(wildcard src/*.h)

all: pg_chime.control META.json

pg_chime.control: pg_chime.control.in Makefile
	sed 's/@EXTVERSION@/$(EXTVERSION)/g' $< > $@.tmp && \
	  (cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@)

META.json: META.json.in Makefile
	sed -e 's/@EXTSEMVER@/$(EXTSEMVER)/g' -e 's/@EXTVERSION@/$(EXTVERSION)/g' $< > $@.tmp && \
	  (cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@)

print-%:
	@echo '$($*)'

.PHONY: test test-ha demo fuzz bench
test:
	@bash test/run.sh

# (make test runs the short form of test/t/021_patroni.pl)
test-ha:
	@PG_CHIME_HA_LONG=1 PG_CHIME_TAP='021_*' bash test/run.sh

demo:
	@bash scripts/demo.sh

fuzz:
	@bash test/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

bench:
	@BENCH=$(BENCH) bash bench/run.sh
