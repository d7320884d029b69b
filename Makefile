# Conveniences over the scripts; the scripts are the source of truth.
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: build test install run bench

build:
	scripts/build-release costd costctl

bench:
	scripts/bench

test:
	scripts/test

run:
	scripts/run

install:
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" scripts/install
