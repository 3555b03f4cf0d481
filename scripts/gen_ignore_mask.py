"""Write the ignore masks of COCO's crowd and small people; the work is in :mod:`src.data.ignore_mask`.

    python3 scripts/gen_ignore_mask.py --train_ann A.json --val_ann B.json \\
        --train_dir coco/train2017 --val_dir coco/val2017

(The reference kept this command in ``src/``; here every entry script but eval.py, train.py and
export.py lives in ``scripts/``, and ``src/gen_ignore_mask.py`` runs this one, so the
reference's command works unchanged.)
"""
import sys

import _repo_path  # noqa: F401  (puts the repository root on sys.path)

from src.data.ignore_mask import main

if __name__ == "__main__":
    sys.exit(main())
