#!/usr/bin/env bash
# The template security tools (pinned in requirements-checkov.txt), from their own venv:
#   tools/checkov.sh translate [--output FILE]   the SAM template as CloudFormation (aws-sam-translator, offline)
#   tools/checkov.sh parliament <args...>         parliament on every policy document (posting_cli.policy_audit)
#   tools/checkov.sh <checkov args...>            checkov on CloudFormation
# checkov pins boto3==1.35.49 and aws-sam-translator pins pydantic~=2.13.3, which would fight the
# project's pins, so both live in .venv-checkov/, reinstalled only when requirements-checkov.txt
# changes (sha256 stamp). Every checkov skip is inline in template.yaml (Metadata: checkov: skip:)
# with its reason; none is given here.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-checkov"
req="$root/requirements-checkov.txt"
stamp="$venv/.requirements-checkov.sha256"

want="$(sha256sum "$req" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$have" != "$want" || ! -x "$venv/bin/checkov" ]] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$venv"
  python="${PYTHON:-}"
  if [[ -z "$python" ]]; then  # the first that really runs (a pyenv shim may exist without one behind it)
    for candidate in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 python3; do
      if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$candidate"; break
      fi
    done
  fi
  "$python" -m venv "$venv"
  echo "tools/checkov.sh: installing $(grep -m1 -E '^checkov' "$req") into .venv-checkov ..." >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" </dev/null
  echo "$want" >"$stamp"
fi

export AWS_EC2_METADATA_DISABLED=true
if [[ "${1:-}" == translate ]]; then
  shift
  PYTHONPATH="$root/tools" exec "$venv/bin/python" -m posting_cli.sam_translate "$@"
fi
if [[ "${1:-}" == parliament ]]; then
  shift
  PYTHONPATH="$root/tools" exec "$venv/bin/python" -m posting_cli.policy_audit "$@"
fi
exec "$venv/bin/checkov" --framework cloudformation --quiet --compact --skip-download "$@"
