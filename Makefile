# qmap build entry points.
#   make run    - install system deps if missing, build (release), solve the default instance
#   make install - build (release) and install `qmap` into cargo's bin directory
#                 (~/.cargo/bin, or $CARGO_INSTALL_ROOT/bin), so that a bare `qmap` runs
#   make test   - install system deps if missing, run the whole workspace's tests (release)
#   make bench  - install system deps if missing, run the benchmark binary (release)
#   make lint   - rustfmt check, clippy and rustdoc with warnings as errors
#
# Everything uses the release profile, so HiGHS (built from source by highs-sys,
# several minutes on 2 cores) is compiled once and shared by run/test/bench/lint.
# Set CARGO_TARGET_DIR outside the clone (as .ci/run does) to keep it across clones.

CARGO    ?= cargo
INSTANCE ?= instances/default.yaml

# System packages needed to build highs-sys: cmake builds HiGHS, libclang is
# loaded by bindgen (libclang-dev also brings clang's builtin headers). The tests of
# measured accuracy (tests/accuracy_measure.rs) read Fashion-MNIST from Debian's
# dataset-fashion-mnist (31 MB, /usr/share/datasets/fashion-mnist).
APT_PKGS := cmake libclang-dev dataset-fashion-mnist
FMNIST   := /usr/share/datasets/fashion-mnist
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

export DEBIAN_FRONTEND := noninteractive

.PHONY: all setup build run install test bench lint fmt clean

all: build

# Installs only what is absent, so a prepared machine does no apt work at all.
setup:
	@missing=""; \
	command -v cmake >/dev/null 2>&1 || missing="$$missing cmake"; \
	if [ -z "$$LIBCLANG_PATH" ] && \
	   ! dpkg-query -W -f='$${Status}' libclang-dev 2>/dev/null | grep -q 'install ok installed'; then \
	  missing="$$missing libclang-dev"; \
	fi; \
	[ -d $(FMNIST) ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else \
	  echo "setup: $(APT_PKGS) already present"; \
	fi

build: setup
	$(CARGO) build --release

run: build
	$(CARGO) run --release -- map $(INSTANCE)

# `cargo install --path .` builds in CARGO_TARGET_DIR (or ./target) like `make build`, so
# nothing is compiled twice; it then copies the binary into cargo's bin directory.
install: setup
	$(CARGO) install --path . --locked --bin qmap
	@bin="$${CARGO_INSTALL_ROOT:-$${CARGO_HOME:-$$HOME/.cargo}}/bin"; \
	case ":$$PATH:" in \
	  *":$$bin:"*) echo "install: qmap is $$bin/qmap (on your PATH)";; \
	  *) echo "install: qmap is $$bin/qmap; $$bin is not on your PATH: add it with"; \
	     echo "  export PATH=\"$$bin:\$$PATH\"   (e.g. in ~/.bashrc)";; \
	esac

test: setup
	$(CARGO) test --release --workspace --no-fail-fast

bench: setup
	$(CARGO) build --release --bins
	$(CARGO) run --release --bin qmap-bench

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --no-deps

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
