#!/usr/bin/env bash
# PyTorch's launcher from Debian's python3-torch (scripts/setup.sh installs it): the same
# `torchrun` a PyTorch 2.x install puts on PATH. torch 1.13's launcher on Python 3.11 cannot
# parse its own default --redirects/--tee ("0" becomes None: AttributeError in to_map), so on
# that pair this passes "--redirects 2 --tee 2" (stderr to the launcher's log dir and, teed, to
# the console with a [defaultN] prefix; stdout untouched).
# Usage: scripts/torchrun.sh --nproc_per_node 2 --no_python build/cora train --config ... --out ...
set -euo pipefail
py=/usr/bin/python3
extra=()
if "$py" -c 'import sys, torch; sys.exit(not (torch.__version__.startswith("1.") and sys.version_info >= (3, 11)))' 2>/dev/null; then
  extra=(--redirects 2 --tee 2)
fi
exec "$py" -m torch.distributed.run "${extra[@]}" "$@"
