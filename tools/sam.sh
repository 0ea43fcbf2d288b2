#!/usr/bin/env bash
# Run the AWS SAM CLI from its own pinned venv: tools/sam.sh <sam args...>
#   tools/sam.sh validate --lint
#   tools/sam.sh build
# .venv-sam/ is created on first use from requirements-sam.txt and reinstalled only when that
# file changes (sha256 stamp). It is kept apart from .venv so SAM CLI's boto3/botocore pins never
# fight the project's. For `sam build`/`sam sync` a real Python 3.13 (the Lambda runtime) is put
# first on PATH. Run it from the project root (where template.yaml and samconfig.toml live).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-sam"
req="$root/requirements-sam.txt"
stamp="$venv/.requirements-sam.sha256"
runtime="3.13"   # Globals.Function.Runtime in template.yaml (python3.13)

die() { echo "tools/sam.sh: $*" >&2; exit 1; }

# --- (a) SAM CLI venv, reinstalled only when requirements-sam.txt changes -------------------------
[[ -f "$req" ]] || die "missing $req"
want="$(sha256sum "$req" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$have" != "$want" || ! -x "$venv/bin/sam" ]] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" || die "could not create $venv with python3"
  fi
  echo "tools/sam.sh: installing $(grep -m1 -E '^aws-sam-cli' "$req") into .venv-sam ..." >&2
  rm -f "$stamp"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" </dev/null
  echo "$want" >"$stamp"
fi

# --- (b) no telemetry, no prompts --------------------------------------------------------------
export SAM_CLI_TELEMETRY=0

# --- (c) a real python3.13 first on PATH (sam build resolves the runtime's interpreter by name) --
# Prints the directory holding a python3.13 that actually runs (pyenv shims may exist yet fail).
find_py313_dir() {
  local cand dir
  for cand in "$(command -v "python$runtime" 2>/dev/null || true)" \
              "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$runtime"*/bin/"python$runtime"; do
    [[ -n "$cand" && -x "$cand" ]] || continue
    dir="$("$cand" -c "import os, sys; assert sys.version_info[:2] == ($runtime_tuple); print(os.path.dirname(sys.executable))" 2>/dev/null)" || continue
    [[ -x "$dir/python$runtime" ]] && { echo "$dir"; return 0; }
  done
  return 1
}
runtime_tuple="${runtime/./, }"

subcommand=""
for arg in "$@"; do [[ "$arg" == -* ]] || { subcommand="$arg"; break; }; done

if py_dir="$(find_py313_dir)"; then
  export PATH="$py_dir:$PATH"
elif [[ "$subcommand" == build || "$subcommand" == sync ]]; then
  die "sam $subcommand needs Python $runtime on PATH, matching the Lambda runtime python$runtime" \
      "(none found via 'command -v python$runtime' or ~/.pyenv/versions/$runtime*/bin;" \
      "install it, e.g. 'pyenv install $runtime', or actions/setup-python with python-version: '$runtime')."
fi

# --- (d) -----------------------------------------------------------------------------------------
exec "$venv/bin/sam" "$@"
