#!/usr/bin/env bash
# OpenPose quickstart: everything on a fresh machine, CPU only, no COCO needed.
#
#   bash scripts/quickstart.sh            # full run: ~4.5 min of training on 2 quiet CPU cores
#   QUICK=1 bash scripts/quickstart.sh    # short run (~75 s of training): learns, lower AP
#
# Steps: create .venv and install (scripts/setup_env.sh), build the synthetic toy COCO set and
# its ignore masks, train from scratch with configs/toy.yaml (validating on toy val every 2
# epochs, keeping best.ckpt), evaluate on toy val with eval.py
# (COCO keypoint AP), draw the loss and validation-AP curves, export MINDIR and ONNX, and draw detections on toy
# val images and on the real COCO images of ../shared/data/coco_sample (when present).
# Everything goes under runs/quickstart/ (git-ignored).
#
# Environment:
#   QUICK=1                 short run (fewer images and epochs)
#   SKIP_SETUP=1            use the existing venv as it is
#   VENV=DIR                the venv (default .venv); PYTHON, MINDSPORE_VERSION and
#                           OPENPOSE_OWN_MINDSPORE=1 reach scripts/setup_env.sh (see there)
#   QUICKSTART_OUT=DIR      output folder (default runs/quickstart)
#   OPENPOSE_SHARED=DIR     the shared data folder (default ../shared)
#   EXTRA_TRAIN_ARGS="..."  more train.py options (e.g. "--max_epoch_train 4"; not the people rule:
#                           min_keypoints / min_area come from configs/toy.yaml, as the masks do)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${QUICKSTART_OUT:-runs/quickstart}
QUICK=${QUICK:-0}
VENV=${VENV:-.venv}
PY=$VENV/bin/python
CONFIG=configs/toy.yaml
SHARED=${OPENPOSE_SHARED:-$REPO/../shared}
SAMPLE=$SHARED/data/coco_sample
STEPS=8

if [ "$QUICK" = 1 ]; then
    NUM_TRAIN=400; NUM_VAL=50; EPOCHS=5
else
    NUM_TRAIN=1000; NUM_VAL=100; EPOCHS=""
fi

step() { printf '\n======== [%s/%s] %s ========\n' "$1" "$STEPS" "$2"; }
fail() { echo "quickstart: error: $*" >&2; exit 1; }
START_ALL=$(date +%s)
mkdir -p "$OUT"
# One quickstart per folder: a second one would delete the data and checkpoints the first is
# using. The programs started below inherit the lock: it is released when the script and they
# have ended, however they end (after a kill -9, train.py's data workers may hold it a few
# seconds longer).
if command -v flock >/dev/null 2>&1; then
    exec 9>>"$OUT/.quickstart.lock"
    LOCK_STATUS=0
    flock -n 9 || LOCK_STATUS=$?
    if [ "$LOCK_STATUS" = 1 ]; then
        fail "another quickstart is running in $OUT (wait for it, or set QUICKSTART_OUT)"
    elif [ "$LOCK_STATUS" != 0 ]; then
        echo "quickstart: warning: cannot lock $OUT (flock status $LOCK_STATUS); running unlocked" >&2
    fi
fi

# ------------------------------------------------------------------------------------------
step 1 "environment (.venv, requirements)"
if [ "${SKIP_SETUP:-0}" = 1 ] && [ -x "$PY" ]; then
    echo "SKIP_SETUP=1: using the existing $VENV"
else
    bash scripts/setup_env.sh
fi

# ------------------------------------------------------------------------------------------
step 2 "toy dataset ($NUM_TRAIN train + $NUM_VAL val images, 160x160, with ignore masks)"
DATA=$OUT/data
# the masks follow $CONFIG's people rule (min_keypoints, min_area), as train.py requires: the
# stamp names the config's content, so data made under another config is made again
STAMP=$DATA/.complete_${NUM_TRAIN}_${NUM_VAL}_$(cksum < "$CONFIG" | cut -d ' ' -f 1)
if [ -f "$STAMP" ] && [ -d "$DATA/ignore_mask_train" ] && [ -d "$DATA/ignore_mask_val" ]; then
    echo "reusing $DATA"
else
    rm -rf "$DATA"
    $PY scripts/make_toy_coco.py --out "$DATA" --num_train "$NUM_TRAIN" --num_val "$NUM_VAL" \
        --size 160 --seed 0 --config_path "$CONFIG"
    touch "$STAMP"
fi
VAL_ANN=$DATA/annotations/person_keypoints_val2017.json

# ------------------------------------------------------------------------------------------
step 3 "training from scratch ($CONFIG$([ "$QUICK" = 1 ] && echo ", QUICK: $EPOCHS epochs"))"
CKPT_DIR=$OUT/checkpoint
rm -rf "$CKPT_DIR"
TRAIN_ARGS=(--config_path "$CONFIG" --imgpath_train "$DATA/train2017"
            --jsonpath_train "$DATA/annotations/person_keypoints_train2017.json"
            --maskpath_train "$DATA/ignore_mask_train" --save_model_path "$CKPT_DIR"
            --val_interval 2 --imgpath_val "$DATA/val2017" --ann "$VAL_ANN" --val_num 0)
[ -n "$EPOCHS" ] && TRAIN_ARGS+=(--max_epoch_train "$EPOCHS")
# shellcheck disable=SC2206
[ -n "${EXTRA_TRAIN_ARGS:-}" ] && TRAIN_ARGS+=(${EXTRA_TRAIN_ARGS})
echo "$PY train.py ${TRAIN_ARGS[*]}"
T0=$(date +%s)
$PY train.py "${TRAIN_ARGS[@]}" 2>&1 | tee "$OUT/train.log"
TRAIN_SECONDS=$(( $(date +%s) - T0 ))
CKPT=$(ls -t "$CKPT_DIR"/ckpt_0/0-*.ckpt 2>/dev/null | head -n 1 || true)
[ -n "$CKPT" ] || fail "training wrote no checkpoint in $CKPT_DIR/ckpt_0"
SPEED=$(grep -a -o '[0-9.]* img/s' "$OUT/train.log" | awk '{s += $1; n++} END {if (n) printf "%.2f", s / n; else print "n/a"}')
echo "training took ${TRAIN_SECONDS} s (mean ${SPEED} img/s); checkpoint $CKPT"

# ------------------------------------------------------------------------------------------
step 4 "evaluation on toy val (eval.py, COCO keypoint AP)"
EVAL_DIR=$OUT/eval_toy
rm -rf "$EVAL_DIR"
# no --config_path: the checkpoint records its network (1 stage, width 0.25, BatchNorm VGG)
$PY eval.py --model_path "$CKPT" --imgpath_val "$DATA/val2017" \
    --ann "$VAL_ANN" --output_img_path "$EVAL_DIR" --eva_num 0 --inference_img_size 240 \
    --vis True 2>&1 | tee "$OUT/eval.log"
AP=$($PY -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))['metrics']['AP'])" \
     "$EVAL_DIR/eval_metrics.json")

# ------------------------------------------------------------------------------------------
step 5 "loss curve"
$PY scripts/plot_loss.py "$CKPT_DIR/metrics.jsonl" -o "$OUT/loss.png" \
    --title "toy training from scratch (${TRAIN_SECONDS} s, toy val AP $AP)"

# ------------------------------------------------------------------------------------------
step 6 "export (MINDIR and ONNX)"
for FORMAT in MINDIR ONNX; do
    $PY export.py --ckpt_file "$CKPT" --file_format "$FORMAT" \
        --file_name "$OUT/openpose_toy"
done

# ------------------------------------------------------------------------------------------
step 7 "detections on real images ($SAMPLE)"
REAL_DIR=$OUT/vis_real
rm -rf "$REAL_DIR"
if [ -f "$SAMPLE/person_keypoints_sample.json" ]; then
    # The toy model has only seen stick figures: expect few or wrong people on photos.
    $PY eval.py --model_path "$CKPT" --imgpath_val "$SAMPLE" \
        --ann "$SAMPLE/person_keypoints_sample.json" --output_img_path "$REAL_DIR" --eva_num 0 \
        --inference_img_size 368 --vis True 2>&1 | tee "$OUT/eval_real.log"
else
    echo "no $SAMPLE/person_keypoints_sample.json: skipped (set OPENPOSE_SHARED)"
fi

# ------------------------------------------------------------------------------------------
step 8 "summary"
TOY_PICS=$(ls "$EVAL_DIR"/*.png 2>/dev/null | head -n 3 | tr '\n' ' ')
REAL_PICS=$(ls "$REAL_DIR"/*.png 2>/dev/null | tr '\n' ' ' || true)
echo "toy val COCO keypoint metrics (eval.py on $NUM_VAL images):"
grep -a -A1 '^ *AP ' "$OUT/eval.log" | tail -n 2
echo "toy val AP:        $AP"
echo "training time:     ${TRAIN_SECONDS} s (train.py wall time, mean ${SPEED} img/s)"
echo "checkpoint:        $CKPT (best validation AP: $CKPT_DIR/ckpt_0/best.ckpt)"
echo "validation during training (toy val):"
grep -a -o $'validation in epoch[^\r]*' "$OUT/train.log" || true
echo "loss curve:        $OUT/loss.png"
echo "exported:          $OUT/openpose_toy.mindir $OUT/openpose_toy.onnx"
echo "toy drawings:      $EVAL_DIR/*.png (e.g. $TOY_PICS)"
echo "real drawings:     ${REAL_PICS:-none}"
echo "total time:        $(( $(date +%s) - START_ALL )) s"
