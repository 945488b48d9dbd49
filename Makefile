# qroam — multi-cloud vehicle-to-cloud protocol with quantum keys.
# Non-recursive GNU Makefile.  `make V=1` shows the commands.

CC	?= cc
PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
DESTDIR	?=
BUILD	?= build
PYTHON	?= python3

PKGS	:= libevent libevent_openssl openssl sqlite3 libprotobuf-c jansson libsystemd libpq
PKGCFG	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKGLIBS	:= $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes \
	   -Wstrict-prototypes -Wpointer-arith -Wvla -Werror -MMD -MP
CPPFLAGS += -D_GNU_SOURCE -Icommon -Ilibvehicle -I$(BUILD)/proto $(PKGCFG)
LDLIBS	+= $(PKGLIBS) -lm
SAN	:= -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

ifeq ($(V),1)
Q	:=
E	:= @:
else
Q	:= @
E	:= @printf '  %-6s %s\n'
endif

# Every daemon folder with its main in <d>/<d>.c.
DAEMONS	:= $(foreach d,fillerd registrard tspd vehicled schedd qkdd kmpd,$(if $(wildcard $(d)/$(d).c),$(d)))
PROTO_C	:= $(BUILD)/proto/qroam.pb-c.c
PROTO_H	:= $(BUILD)/proto/qroam.pb-c.h
COMMON	:= $(wildcard common/*.c)
# libvehicle.a: the vehicle side's modules (chip, provisioning, messages,
# route), shared by vehicled, qroamctl, qbench, qprobe and the unit tests.
LIBVEHICLE := $(wildcard libvehicle/*.c)
UNIT	:= $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
UNITLIB	:= $(patsubst %.c,$(BUILD)/asan/%.o,$(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c)))
QPROBE	:= $(patsubst %.c,$(BUILD)/asan/%.o,$(wildcard tests/tools/*.c))
TOOLS	:= qprobe qroamctl

# Objects of one variant ($1 = obj | asan).
common_objs = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(COMMON)) $(BUILD)/$(1)/proto/qroam.pb-c.o
libvehicle_objs = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(LIBVEHICLE))
daemon_objs = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(filter-out $(2)/$(2).c,$(wildcard $(2)/*.c)))
# Libraries a daemon links between its own and libqroam.a.
vehicled_LIBS := libvehicle.a

.PHONY: all asan check run bench bench-fleet soak install clean deps fuzz \
	fuzz-smoke fuzz-build
.DEFAULT_GOAL := all

all: $(addprefix $(BUILD)/bin/,$(DAEMONS)) $(BUILD)/bin/qroamctl

asan: $(addprefix $(BUILD)/asan/bin/,$(DAEMONS) $(TOOLS)) \
      $(addprefix $(BUILD)/asan/test/,$(UNIT))

# One protoc-c run writes both files (a grouped target).
$(PROTO_C) $(PROTO_H) &: proto/qroam.proto
	@mkdir -p $(BUILD)/proto
	$(E) PROTOC $<
	$(Q)protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<

# One set of rules per variant: normal objects and sanitized objects.
define variant
$(BUILD)/$(1)/%.o: %.c $(PROTO_H)
	@mkdir -p $$(@D)
	$$(E) CC $$<
	$$(Q)$$(CC) $$(CPPFLAGS) $$(CFLAGS) $(2) -c -o $$@ $$<

$(BUILD)/$(1)/proto/qroam.pb-c.o: $(PROTO_C)
	@mkdir -p $$(@D)
	$$(E) CC $$<
	$$(Q)$$(CC) $$(CPPFLAGS) $$(CFLAGS) -Wno-missing-prototypes $(2) -c -o $$@ $$<

$(BUILD)/$(1)/libqroam.a: $(call common_objs,$(1))
	$$(E) AR $$@
	$$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/libvehicle.a: $(call libvehicle_objs,$(1))
	$$(E) AR $$@
	$$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/lib%.a: $$$$(call daemon_objs,$(1),%)
	$$(E) AR $$@
	$$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/bin/%: $(BUILD)/$(1)/%/$$$$*.o $(BUILD)/$(1)/lib%.a \
    $$$$(addprefix $(BUILD)/$(1)/,$$$$($$$$*_LIBS)) $(BUILD)/$(1)/libqroam.a
	@mkdir -p $$(@D)
	$$(E) LD $$@
	$$(Q)$$(CC) $$(CFLAGS) $(2) -o $$@ $$^ $$(LDLIBS)
endef

.SECONDEXPANSION:
# Objects and libraries are kept between builds.
.SECONDARY:
$(eval $(call variant,obj,))
$(eval $(call variant,asan,$(SAN)))

$(BUILD)/bin/%: $(BUILD)/obj/bin/%
	@mkdir -p $(@D)
	$(Q)cp $< $@

# Test tool: the vehicle library driven by a script-friendly CLI.
$(BUILD)/asan/bin/qprobe: $(QPROBE) $(BUILD)/asan/libvehicle.a $(BUILD)/asan/libqroam.a
	@mkdir -p $(@D)
	$(E) LD $@
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

CTLOBJ = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(wildcard qroamctl/*.c))
$(BUILD)/obj/bin/qroamctl: $(call CTLOBJ,obj) $(BUILD)/obj/libvehicle.a $(BUILD)/obj/libqroam.a
	@mkdir -p $(@D)
	$(E) LD $@
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/asan/bin/qroamctl: $(call CTLOBJ,asan) $(BUILD)/asan/libvehicle.a $(BUILD)/asan/libqroam.a
	@mkdir -p $(@D)
	$(E) LD $@
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# Load generator of `make bench`: not sanitized, since it measures.
BENCHOBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/*.c))
$(BUILD)/bin/qbench: $(BENCHOBJ) $(BUILD)/obj/libvehicle.a $(BUILD)/obj/libqroam.a
	@mkdir -p $(@D)
	$(E) LD $@
	$(Q)$(CC) $(CFLAGS) -pthread -o $@ $^ $(LDLIBS)

# Unit tests link the shared test helpers, every daemon library and the
# vehicle library; only what they use is pulled in.
$(BUILD)/asan/test/%: $(BUILD)/asan/tests/unit/%.o $(UNITLIB) $(foreach d,$(DAEMONS),$(BUILD)/asan/lib$(d).a) \
    $(BUILD)/asan/libvehicle.a $(BUILD)/asan/libqroam.a
	@mkdir -p $(@D)
	$(E) LD $@
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# libFuzzer targets (tests/fuzz/fuzz_*.c, README.md "Fuzzing"): every
# object again, built by clang with coverage and sanitizers.
CLANG	?= /usr/bin/clang
FUZZSAN	:= -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer
FUZZ	:= $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out tests/fuzz/fuzz_util.c,\
	   $(wildcard tests/fuzz/fuzz_*.c)))
FUZZBIN	:= $(addprefix $(BUILD)/fuzz/bin/fuzz_,$(FUZZ))
FUZZ_SECONDS ?= 300
FUZZ_SMOKE ?= 4
FUZZ_RUNS ?=
$(BUILD)/fuzz/%: CC := $(CLANG)
# clang's -Wformat=2 also flags vfprintf in helpers gcc accepts.
$(eval $(call variant,fuzz,$(FUZZSAN) -Wno-format-nonliteral))

$(FUZZBIN): $(BUILD)/fuzz/bin/%: $(BUILD)/fuzz/tests/fuzz/%.o \
    $(BUILD)/fuzz/tests/fuzz/fuzz_util.o \
    $(foreach d,$(DAEMONS),$(BUILD)/fuzz/lib$(d).a) \
    $(BUILD)/fuzz/libvehicle.a $(BUILD)/fuzz/libqroam.a
	@mkdir -p $(@D)
	$(E) LD $@
	$(Q)$(CLANG) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

# The seed corpora, written by the project's own encoders.
$(BUILD)/asan/bin/fuzz-seeds: $(BUILD)/asan/tests/fuzz/seeds.o $(BUILD)/asan/tests/fuzz/fuzz_util.o \
    $(foreach d,$(DAEMONS),$(BUILD)/asan/lib$(d).a) \
    $(BUILD)/asan/libvehicle.a $(BUILD)/asan/libqroam.a
	@mkdir -p $(@D)
	$(E) LD $@
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzzcorpus/.stamp: $(BUILD)/asan/bin/fuzz-seeds $(wildcard deploy/examples/*.conf)
	$(E) SEEDS $(BUILD)/fuzzcorpus
	$(Q)rm -rf $(BUILD)/fuzzcorpus && $(BUILD)/asan/bin/fuzz-seeds $(BUILD)/fuzzcorpus
	$(Q)touch $@

fuzz-build: $(FUZZBIN) $(BUILD)/fuzzcorpus/.stamp

# make fuzz: each target for FUZZ_SECONDS; make fuzz-smoke (in make check):
# each for FUZZ_SMOKE seconds, after replaying its seeds and every crash
# ever found (tests/fuzz/regress/<target>/).
fuzz fuzz-smoke: fuzz-build
	@FUZZ_TIME=$(if $(filter fuzz,$@),$(FUZZ_SECONDS) FUZZ_KEEP=1 FUZZ_RUNS=$(FUZZ_RUNS),$(FUZZ_SMOKE)) \
	    sh tests/fuzz/run.sh $(BUILD) $(FUZZ)

deps:
	@sh scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory all asan
	@$(MAKE) --no-print-directory fuzz-smoke
	@rm -rf $(BUILD)/destdir
	@$(MAKE) --no-print-directory -s install DESTDIR=$(BUILD)/destdir PREFIX=/usr
	@sh scripts/check_units.sh $(BUILD)/destdir
	@sh scripts/check_prometheus.sh $(BUILD)/destdir/usr/share/doc/qroam/prometheus
	@$(PYTHON) tests/run.py

run: deps
	@$(MAKE) --no-print-directory all
	@$(PYTHON) scripts/testbed.py

bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bin/qbench
	@$(PYTHON) scripts/bench.py
	@$(PYTHON) scripts/bench_fleet.py

# The fleet run of `make bench` alone (BENCHMARKS.md, "Scale").
bench-fleet: deps
	@$(MAKE) --no-print-directory all
	@$(PYTHON) scripts/bench_fleet.py

# The soak run: 10,000 vehicles for ten minutes, RSS sampled, the stores
# checked (scripts/soak.py).
soak: deps
	@$(MAKE) --no-print-directory all
	@$(PYTHON) scripts/soak.py

# Daemons in sbin, qroamctl in bin (when built), systemd units with the
# sbin path filled in, man pages, and example configurations (with the
# Prometheus scrape configuration and alerting rules) under the
# documentation; /etc is never written.
install uninstall: SBINDIR ?= $(PREFIX)/sbin
install uninstall: MANDIR ?= $(PREFIX)/share/man
install uninstall: UNITDIR ?= $(PREFIX)/lib/systemd/system
install uninstall: DOCDIR ?= $(PREFIX)/share/doc/qroam
install uninstall: UNITS = $(patsubst systemd/%.in,%,$(wildcard systemd/*.service.in))
install uninstall: MAN8 = $(wildcard $(foreach d,$(DAEMONS) qroamctl,$(d)/$(d).8))
install uninstall: MAN5 = common/qroam.conf.5
install uninstall: EXAMPLES = $(wildcard deploy/examples/*.conf)
# The live map's page (qroamctl map finds it as ../share/qroam/map).
install uninstall: MAPDIR ?= $(PREFIX)/share/qroam/map
install uninstall: PROMETHEUS = $(wildcard deploy/prometheus/*.yml)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR)/prometheus \
	    $(DESTDIR)$(MAPDIR)
	install -m 755 $(addprefix $(BUILD)/bin/,$(DAEMONS)) $(DESTDIR)$(SBINDIR)
	if [ -x $(BUILD)/bin/qroamctl ]; then \
	    install -m 755 $(BUILD)/bin/qroamctl $(DESTDIR)$(BINDIR); fi
	for u in $(UNITS); do \
	    sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/$$u.in > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	    chmod 644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	    mv -f $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5
	install -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8
	install -m 644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples
	install -m 644 $(PROMETHEUS) $(DESTDIR)$(DOCDIR)/prometheus
	install -m 644 doc/protocol.md $(DESTDIR)$(DOCDIR)
	install -m 644 qroamctl/map/index.html qroamctl/map/map.css \
	    qroamctl/map/map.js $(DESTDIR)$(MAPDIR)

.PHONY: uninstall
uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,$(DAEMONS)) $(DESTDIR)$(BINDIR)/qroamctl
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(MAPDIR)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
