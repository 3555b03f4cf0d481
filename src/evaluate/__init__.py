"""From maps to people: decoding, inference, COCO evaluation, drawing, media."""
