"""The 512×512 alignment template.

A similarity transform (rotation, uniform scale, translation) maps the photo onto the template. By
default (`AlignerOptions.alignment="eyes"`) the eye line sets the rotation, the midpoint of the two
iris centres (MediaPipe refined landmarks 468 and 473) goes to the template's eye midpoint, and the
3D inter-iris distance sets the scale (a turned head keeps its size): the eyes land on their template
points within a pixel or two, and the mouth lands where the person's proportions put it (faces differ
by up to ~30 px here). `alignment="least_squares"` fits all three points (eyes and the mouth centre,
the mean of inner-lip corners 78 and 308) instead. Image-left eye first: on a photo that is not
mirrored that is the subject's right eye (landmark 468).
"""
from __future__ import annotations

import numpy as np

CROP_SIZE = 512
# (x, y) in crop pixels: image-left eye, image-right eye, mouth centre.
TEMPLATE_POINTS = np.array([[181.0, 215.0], [331.0, 215.0], [256.0, 345.0]], dtype=np.float32)
LEFT_IRIS = 468  # image-left eye centre (subject's right)
RIGHT_IRIS = 473  # image-right eye centre (subject's left)
MOUTH_CORNERS = (78, 308)  # inner-lip corners; their mean is the mouth centre
