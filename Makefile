# DiffCLIP for QGIS: set-up, tests, packaging, demo and benchmark.
# `make setup` then `make test` on a fresh Debian machine (see README.md).

PLUGIN      := diffclip_qgis
VENV        := .venv
PY          := $(VENV)/bin/python
BUILD       := build
PLUGIN_DIR  := $(BUILD)/$(PLUGIN)
VERSION     := $(shell sed -n 's/^version=//p' metadata.txt)
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
PLUGIN_ENV  := QGIS_PLUGINPATH=$(abspath $(BUILD)) PYTHONPATH=$(abspath $(BUILD)):$$($(PY) -c 'import site; print(site.getsitepackages()[0])') QT_QPA_PLATFORM=offscreen

.PHONY: setup plugin package deploy test test-core test-qgis-lts demo bench gpu-check translations e2e clean

setup:  ## system packages (QGIS, GDAL, Xvfb, Qt tools, venv), the venv with torch, numpy < 2, test tools (scikit-image, scikit-learn, pytest)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq qgis python3-qgis python3-gdal gdal-bin xvfb \
		xauth pyqt5-dev-tools qttools5-dev-tools zip python3-venv >/dev/null
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt

plugin: translations  ## assemble the installable plugin folder build/diffclip_qgis
	rm -rf $(PLUGIN_DIR)
	mkdir -p $(PLUGIN_DIR)
	cp -r $(PLUGIN)/. $(PLUGIN_DIR)/
	cp -r metadata.txt LICENSE resources i18n $(PLUGIN_DIR)/
	find $(PLUGIN_DIR) -name __pycache__ -prune -exec rm -rf {} +
	rm -f $(PLUGIN_DIR)/i18n/*.ts

package: plugin  ## dist/diffclip_qgis-VERSION.zip for the Plugin Manager's "Install from ZIP"
	mkdir -p dist
	rm -f dist/$(PLUGIN)-$(VERSION).zip
	cd $(BUILD) && zip -qr ../dist/$(PLUGIN)-$(VERSION).zip $(PLUGIN)
	@echo "dist/$(PLUGIN)-$(VERSION).zip"

deploy: plugin  ## install into a QGIS profile (QGIS_PROFILE=...)
	mkdir -p $(QGIS_PROFILE)/python/plugins
	rm -rf $(QGIS_PROFILE)/python/plugins/$(PLUGIN)
	cp -r $(PLUGIN_DIR) $(QGIS_PROFILE)/python/plugins/
	@echo "Installed into $(QGIS_PROFILE)/python/plugins/$(PLUGIN); enable it in Plugins > Manage and Install Plugins."

translations:  ## compile i18n/*.ts to .qm
	@for ts in i18n/*.ts; do [ -e "$$ts" ] && lrelease -silent "$$ts" -qm "$${ts%.ts}.qm" || true; done

test: plugin  ## the real QGIS desktop under Xvfb (screenshot in reports/), then the whole pytest suite, against the assembled plugin folder
	$(PLUGIN_ENV) $(PY) tests/desktop/run_desktop_e2e.py
	$(PLUGIN_ENV) $(PY) -m pytest -q tests

test-core: plugin  ## core and GDAL tests only (fast)
	$(PLUGIN_ENV) $(PY) -m pytest -q tests/unit

test-qgis-lts:  ## e2e + pytest on QGIS 3.44 LTR (Debian sid chroot cached in .cache/qgis-lts, root; reports/qgis-lts/)
	$(SUDO) bash scripts/qgis_lts.sh test

demo: plugin  ## the main job on the bundled demo scene, through qgis_process
	$(PLUGIN_ENV) $(PY) scripts/run_demo.py

bench: plugin  ## accuracy / speed / memory benchmark, report under reports/
	$(PLUGIN_ENV) OMP_WAIT_POLICY=PASSIVE $(PY) scripts/benchmark.py

gpu-check: plugin  ## the CUDA paths in one run (under 8 min on one GPU; CPU smoke size without one), table in reports/gpu_check.md
	$(PLUGIN_ENV) OMP_WAIT_POLICY=PASSIVE $(PY) scripts/gpu_check.py

e2e: plugin  ## the plugin in the real QGIS desktop under Xvfb, with a screenshot under reports/
	$(PLUGIN_ENV) $(PY) tests/desktop/run_desktop_e2e.py

clean:
	rm -rf $(BUILD) dist reports demo_output
