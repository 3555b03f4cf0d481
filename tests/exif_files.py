"""Test images with an EXIF Orientation tag (issue 21, point 8), made from a COCO sample image
without re-encoding its pixels."""
import struct

ORIENTATION_TAG = 0x0112


def with_exif_orientation(jpeg_bytes, orientation=6):
    """The JPEG ``jpeg_bytes`` with an APP1 EXIF segment holding ``Orientation = orientation``
    (6: "rotate 90 degrees clockwise to display"), written with Pillow; the compressed pixels
    are untouched, so the stored image is the original one."""
    from PIL import Image
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    blob = exif.tobytes()
    assert jpeg_bytes[:2] == b"\xff\xd8", "not a JPEG"
    return jpeg_bytes[:2] + b"\xff\xe1" + struct.pack(">H", len(blob) + 2) + blob + jpeg_bytes[2:]
