# Conveniences over the scripts; the scripts are the source of truth.
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: build test install run bench

build:
	swift build -c release --product costd
	swift build -c release --product costctl

test:
	scripts/test

run:
	scripts/run

install:
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" scripts/install
