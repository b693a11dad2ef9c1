"""Non-person content: coloured shapes with captions.

They give the tiny CLIP general knowledge besides faces, and a labelled zero-shot task ("which coloured
shape is this?") on which a defense's cost in utility is measured.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from idia.world.faces import _background, _light_and_noise

COLOURS = {
    "red": (210, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 210),
    "yellow": (235, 215, 20),
    "purple": (130, 40, 170),
    "orange": (240, 130, 20),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")

CAPTIONS = (
    "a {colour} {shape}",
    "a photo of a {colour} {shape}",
    "a drawing of a {colour} {shape}",
    "a {shape} in {colour}",
    "a picture of a {colour} {shape}",
    "a {colour} {shape} on a plain background",
)
ZERO_SHOT_PROMPT = "a photo of a {colour} {shape}"


def shape_classes() -> list[tuple[str, str]]:
    """All (colour, shape) classes, in a fixed order: the zero-shot task's labels."""
    return [(c, s) for s in SHAPES for c in COLOURS]


def class_label(colour: str, shape: str) -> str:
    return f"{colour} {shape}"


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "triangle":
        corners = [(r * math.cos(angle + k * 2 * math.pi / 3), r * math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    elif kind == "square":
        corners = [(r * math.cos(angle + math.pi / 4 + k * math.pi / 2), r * math.sin(angle + math.pi / 4 + k * math.pi / 2))
                   for k in range(4)]
    elif kind == "star":
        corners = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.45
            corners.append((rr * math.cos(angle + k * math.pi / 5), rr * math.sin(angle + k * math.pi / 5)))
    else:  # cross: twelve corners of a plus sign
        w = r * 0.35
        base = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
        corners = [(x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)) for x, y in base]
    return [(cx + x, cy + y) for x, y in corners]


def render_shape(colour: str, shape: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """One picture of a coloured shape, placed, sized and turned at random."""
    scale = 4
    big = size * scale
    image = _background(size, rng).resize((big, big), Image.BILINEAR)
    draw = ImageDraw.Draw(image)
    fill = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in COLOURS[colour])
    r = rng.uniform(0.2, 0.38) * big
    cx = rng.uniform(r, big - r)
    cy = rng.uniform(r, big - r)
    angle = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=int(r * 0.35))
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=fill)
    return _light_and_noise(image.resize((size, size), Image.LANCZOS), rng)
