# Two commands on a fresh machine: `make demo` (the main job) and `make test`. Both create .venv on first use.
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: demo test bench world venv clean

demo: $(STAMP)
	.venv/bin/idia demo --out demo-output

test: $(STAMP)
	.venv/bin/python -P -m pytest -q

bench: $(STAMP)
	$(PY) bench/bench_idia.py

world: $(STAMP)
	.venv/bin/idia world build

venv: $(STAMP)

# torch 2.14.1 + torchvision 0.29.1 install from this machine's disk (see README); the rest from PyPI.
$(STAMP): pyproject.toml scripts/ensure-system-deps
	scripts/ensure-system-deps
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,hf,ray]'
	touch $(STAMP)

clean:
	rm -rf demo-output .pytest_cache build *.egg-info
