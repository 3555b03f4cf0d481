"""COCO reading and checks, ignore masks, augmentation, training targets, the data pipeline, the toy set."""
