# Sourced by bin/qa and bin/test: create .venv and install qa into it when missing or outdated.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$here/.venv"
stamp="$venv/.qa-installed"
if [ ! -x "$venv/bin/qa" ] || [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  echo "qa: installing into $venv (first run only; takes a few minutes)" >&2
  python="$(command -v python3.11 || command -v python3)"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >&2
  log="$venv/install.log"
  # torch first, pinned: the local CPU wheel. Anything looser pulls gigabytes of CUDA.
  if ! { "$venv/bin/pip" install "torch==2.13.0" && "$venv/bin/pip" install -e "$here[dev]"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "qa: installation failed; the full log is $log" >&2
    exit 1
  fi
  touch "$stamp"
fi
