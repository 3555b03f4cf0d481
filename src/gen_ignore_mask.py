"""The reference's command for ignore masks, kept so its README works here unchanged:

    python3 ./src/gen_ignore_mask.py --train_ann A.json --val_ann B.json \\
        --train_dir coco/train2017 --val_dir coco/val2017

It replaces itself with ``scripts/gen_ignore_mask.py`` (same arguments, exit status and
signals); the work is in :mod:`src.data.ignore_mask`. Importing this module does nothing.
"""
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    script = Path(__file__).resolve().parents[1] / "scripts" / "gen_ignore_mask.py"
    os.execv(sys.executable, [sys.executable, str(script), *sys.argv[1:]])
