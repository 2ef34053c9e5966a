# Two entry points: `make demo` and `make test`.  Each installs what it
# needs on a fresh Debian machine (run as root) and is cheap when repeated.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT    := nmap ndiff masscan tshark libxml2-utils ieee-data iptables iproute2 \
          nginx-light socat python3-venv procps \
          openssh-server openssh-client lighttpd redis-server memcached vsftpd dnsmasq mosquitto \
          chrony snmpd tftpd-hpa libcoap3-bin xinetd \
          rpcbind samba avahi-daemon strongswan-charon frr miniupnpd-nftables kamailio ngtcp2-server openssl \
          postgresql chromium
export DEBIAN_FRONTEND := noninteractive

.PHONY: demo test deps venv lab-down clean

# The daemons are for the lab, where leadline starts them in namespaces; a
# policy-rc.d keeps their packages from starting them on the host while installing.
deps:
	@dpkg -s $(APT) >/dev/null 2>&1 || { \
	  guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod 755 /usr/sbin/policy-rc.d; guard=1; fi; \
	  apt-get update -qq && apt-get install -y -qq $(APT) >/dev/null; status=$$?; \
	  [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; }

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip >/dev/null
	@$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Bytecode is compiled here because the editable install does not, and some
# environments (PYTHONDONTWRITEBYTECODE) never cache it: every run would recompile.
venv: $(BIN)/.installed
	@$(BIN)/python -m compileall -q src/leadline

LL := $(CURDIR)/$(BIN)/leadline

demo: deps venv
	$(BIN)/leadline lab up
	@echo; echo '## A connect scan of the course server (any user can run this)'
	$(BIN)/leadline lab exec -- $(LL) -sT -p 1-1024,50000-50010 --reason 198.18.1.10
	@echo; echo '## Which hosts are up on the lab subnet (ARP, with MAC vendors)'
	$(BIN)/leadline lab exec -- $(LL) -sn 198.18.1.0/24
	@echo; echo '## A SYN scan of the Windows-like host, with the exchange behind each verdict'
	$(BIN)/leadline lab exec -- $(LL) -sS --top-ports 20 --explain --open 198.18.1.30
	@echo; echo '## The operating system of the far host, two routers away, and the route to it'
	$(BIN)/leadline lab exec -- $(LL) -O --traceroute -F 198.18.3.10
	@echo; echo '## The full report of the course server: versions, scripts, OS and route (-A)'
	$(BIN)/leadline lab exec -- $(LL) -A -p 1-1024,50000-50010 198.18.1.10
	@echo; echo '## Both lab subnets saved to the scan history, and the HTML report of them with its network map'
	@mkdir -p build; rm -f build/demo.db
	@tr=; if $(BIN)/leadline --traceroute -sL -n 198.18.1.10 >/dev/null 2>&1; then tr=--traceroute; fi; \
	  $(BIN)/leadline lab exec -- $(LL) -sS -sV -n -p 22,80,135,445,3389,50007,50008 $$tr --open \
	    --db sqlite:///$(CURDIR)/build/demo.db 198.18.1.0/24 198.18.3.0/24
	$(BIN)/leadline db list --db sqlite:///$(CURDIR)/build/demo.db
	$(BIN)/leadline report 1 --db sqlite:///$(CURDIR)/build/demo.db -o build/lab-report.html
	@echo; echo "The report of the lab is $(CURDIR)/build/lab-report.html: open it in any browser, no network needed."
	@echo "The lab stays up: '$(BIN)/leadline lab shell' to explore, '$(BIN)/leadline lab down' to remove it."

# Type errors fail the run before any test starts ([tool.mypy] in pyproject.toml).
# Two phases.  First every test not marked serial, on TEST_WORKERS processes
# (pytest-xdist): most lab and oracle time is waiting (nmap's timeouts, silent
# ports, daemons starting), which workers overlap even on two cores;
# tests/conftest.py's scheduler keeps each lab or oracle module whole on one
# worker (modules sharing a lab together) and deals the longest out first.
# Then the serial tests (wall-clock bounds, floods, changes to the practice
# lab) in one process, one after the other: none waits for a worker to drain.
# The practice lab built by the first phase is reused by the second, which
# removes it.  Both phases run; either failing fails the target.  The rules
# and the marks are in tests/conftest.py's docstring and docs/design.md
# ("Tests"); TEST_WORKERS=0 runs the first phase in one process.
TEST_WORKERS ?= 3
test: deps venv
	$(BIN)/python -m mypy
	@status=0; \
	  LEADLINE_TEST_KEEP_LAB=1 $(BIN)/python -m pytest -q --durations=15 -n $(TEST_WORKERS) -m 'not serial' || status=$$?; \
	  $(BIN)/python -m pytest -q --durations=10 -m serial || status=$$?; \
	  exit $$status

lab-down:
	-$(BIN)/leadline lab down

clean: lab-down
	rm -rf $(VENV) build *.egg-info src/*.egg-info
