# Two entry points: `make demo` and `make test`.  Each installs what it
# needs on a fresh Debian machine (run as root) and is cheap when repeated.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT    := nmap ndiff masscan tshark libxml2-utils ieee-data iptables iproute2 \
          nginx-light socat python3-venv procps
export DEBIAN_FRONTEND := noninteractive

.PHONY: demo test deps venv lab-down clean

deps:
	@dpkg -s $(APT) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(APT) >/dev/null; }

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip >/dev/null
	@$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/.installed

demo: deps venv
	$(BIN)/leadline lab up
	$(BIN)/leadline lab exec -- $(CURDIR)/$(BIN)/leadline -sT -p 1-1024,50000-50010 --reason 198.18.1.10
	$(BIN)/leadline lab exec -- $(CURDIR)/$(BIN)/leadline -sT -sn 198.18.1.0/24
	@echo "The lab stays up: 'leadline lab shell' to explore, 'leadline lab down' to remove it."

test: deps venv
	$(BIN)/python -m pytest -q

lab-down:
	-$(BIN)/leadline lab down

clean: lab-down
	rm -rf $(VENV) build *.egg-info src/*.egg-info
