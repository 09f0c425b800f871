#!/usr/bin/env bash
# PyTorch's launcher from Debian's python3-torch (scripts/setup.sh installs it): the same
# `torchrun` a PyTorch 2.x install puts on PATH, with two Debian workarounds:
# - torch 1.13's launcher on Python 3.11 cannot parse its own default --redirects/--tee ("0"
#   becomes None: AttributeError in to_map), so there it passes "--redirects 2 --tee 2" (stderr
#   to the launcher's log dir and, teed, to the console with a [defaultN] prefix).
# - trixie's torch 2.6 is built without libuv while TCPStore defaults to use_libuv=True ("use_libuv
#   was requested but PyTorch was build without libuv support"), so the launcher's stores are made
#   with use_libuv=False (the classic TCPStore server, which every torch has).
# Usage: scripts/torchrun.sh --nproc_per_node 2 --no_python build/cora train --config ... --out ...
set -euo pipefail
py=/usr/bin/python3
extra=()
if "$py" -c 'import sys, torch; sys.exit(not (torch.__version__.startswith("1.") and sys.version_info >= (3, 11)))' 2>/dev/null; then
  extra=(--redirects 2 --tee 2)
fi
exec "$py" -c '
import sys
import torch.distributed as d
if "use_libuv" in (d.TCPStore.__init__.__doc__ or ""):
    _Store = d.TCPStore
    class TCPStore(_Store):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("use_libuv", False)
            super().__init__(*args, **kwargs)
    d.TCPStore = TCPStore
from torch.distributed.run import main
sys.argv[0] = "torchrun"
main()
' "${extra[@]}" "$@"
