"""Aligned face crops: every face reaches the network the same way, eyes level and at the same
place, whatever the head's tilt, size and position in the frame.

The template is where CenterFace puts the five landmarks on FER2013's own 48x48 crops (median
over 800 PublicTest faces, found at 2x with a 25% border): an aligned crop of a webcam face looks
like the crops the network learned from. A similarity transform (rotation, uniform scale,
shift; no shear) is fitted to the five points by least squares.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

NATIVE_SIZE = 48

#: (x, y) in a 48x48 FER2013 crop: image-left eye, other eye, nose tip, mouth corners.
TEMPLATE_48 = np.array([[15.2, 19.3], [33.0, 18.9], [24.1, 28.9], [17.3, 36.4], [31.5, 36.0]], np.float64)


def similarity(points: Sequence[Tuple[float, float]], template: np.ndarray = TEMPLATE_48) -> np.ndarray:
    """The 2x3 similarity transform taking ``points`` closest (least squares) to ``template``."""
    src = np.asarray(points, np.float64)
    dst = np.asarray(template, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    # Umeyama: the rotation and scale from the cross-covariance of the centred point sets.
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()
    norm = (s ** 2).sum()
    if norm <= 1e-9:
        raise ValueError("landmarks collapse to one point")
    c, si = a / norm, b / norm
    rotation = np.array([[c, -si], [si, c]])
    shift = dst_mean - rotation @ src_mean
    return np.hstack([rotation, shift[:, None]])


def aligned_face(gray: np.ndarray, landmarks: Sequence[Tuple[float, float]], size: int = NATIVE_SIZE,
                 template: np.ndarray = TEMPLATE_48) -> np.ndarray:
    """The face at ``size`` x ``size`` (uint8), warped so its landmarks sit on the template.

    A large face is first shrunk with area averaging (as FER2013's crops were), so the warp never
    skips pixels; borders outside the frame repeat the edge.
    """
    points = np.asarray(landmarks, np.float64)
    scaled_template = np.asarray(template, np.float64) * (size / float(NATIVE_SIZE))
    matrix = similarity(points, scaled_template)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if scale < 0.5:
        # Cut the face's neighbourhood, shrink it to ~2x the output, then warp that.
        centre = points.mean(0)
        half = 1.2 * size / scale
        x0, y0 = int(max(0, centre[0] - half)), int(max(0, centre[1] - half))
        x1, y1 = int(min(gray.shape[1], centre[0] + half)), int(min(gray.shape[0], centre[1] + half))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            factor = min(1.0, 2.0 * scale)
            region = gray[y0:y1, x0:x1]
            small = cv2.resize(region, (max(2, int(round(region.shape[1] * factor))),
                                        max(2, int(round(region.shape[0] * factor)))), interpolation=cv2.INTER_AREA)
            fx, fy = small.shape[1] / region.shape[1], small.shape[0] / region.shape[0]
            local = (points - [x0, y0]) * [fx, fy]
            matrix = similarity(local, scaled_template)
            gray = small
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_angle(landmarks: Optional[Sequence[Tuple[float, float]]]) -> Optional[float]:
    """The head's roll in degrees (the line through the eyes against the horizontal)."""
    if not landmarks:
        return None
    (x0, y0), (x1, y1) = landmarks[0], landmarks[1]
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
