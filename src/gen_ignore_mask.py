"""The reference README's command for ignore masks; the work is in :mod:`src.data.ignore_mask`.

    python3 ./src/gen_ignore_mask.py --train_ann A.json --val_ann B.json \\
        --train_dir coco/train2017 --val_dir coco/val2017
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # run as a file, so the repository root is not on the path yet
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from src.data.ignore_mask import main

    sys.exit(main())
