# The two commands of the README:
#   make site   install everything (Debian packages, .venv, testbed binaries), start the testbed,
#               run `ansible-playbook site.yml -i inventories/testbed`
#   make test   install the same, then ruff, ansible-lint, pytest and molecule
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/.testbed/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup up down site test lint unit integration molecule bench clean
setup:
	bash scripts/setup.sh
up: setup
	bash testbed/up.sh
down:
	bash testbed/down.sh
site: up
	eval "$$(bash scripts/mitogen_env.sh)"; ansible-playbook site.yml -i inventories/testbed
test: setup
	bash scripts/test.sh
bench: up
	python bench/run.py
clean:
	bash testbed/down.sh --purge
