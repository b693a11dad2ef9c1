"""Procedural faces: a made-up person's fixed appearance, and photos of it that vary like real photos do.

An identity is a handful of appearance parameters (face shape, skin, hair, eyes, brows, nose, mouth, glasses,
beard). A photo draws that face with what changes from one picture to the next: pose, scale, position, lighting,
background, clothing, expression and sensor noise. Palettes are small on purpose, so that people share hair
colours or skin tones and only the combination tells them apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SKIN_TONES = [(255, 224, 196), (241, 194, 160), (224, 172, 128), (198, 134, 96), (161, 102, 68),
              (122, 78, 50), (92, 58, 38), (233, 200, 175)]
HAIR_COLOURS = [(20, 18, 18), (70, 45, 30), (120, 80, 45), (190, 150, 90), (230, 210, 150),
                (160, 60, 30), (150, 150, 150), (235, 235, 235)]
EYE_COLOURS = [(60, 40, 25), (40, 90, 160), (60, 130, 70), (110, 110, 110), (120, 80, 40)]
LIP_COLOURS = [(170, 70, 70), (140, 60, 60), (190, 100, 100), (120, 50, 50)]
GLASSES_COLOURS = [(10, 10, 10), (120, 70, 20), (170, 170, 180), (150, 20, 20)]
HAIR_STYLES = ("bald", "short", "long", "bun", "fringe", "side_part", "curly")
GLASSES = ("none", "none", "round", "square")  # half the people wear none
BEARDS = ("none", "none", "stubble", "full")


@dataclass(frozen=True)
class Appearance:
    """What stays the same in every photo of one person."""

    face_aspect: float  # width / height of the head
    skin: int
    hair_colour: int
    hair_style: str
    eye_colour: int
    eye_size: float
    eye_spacing: float
    eye_height: float
    brow_thickness: float
    brow_tilt: float
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_colour: int
    glasses: str
    glasses_colour: int
    beard: str
    ear_size: float

    def to_dict(self) -> dict:
        return asdict(self)


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw one person's appearance; beards are drawn less often than glasses, as in life."""
    return Appearance(
        face_aspect=float(rng.uniform(0.68, 0.92)),
        skin=int(rng.integers(len(SKIN_TONES))),
        hair_colour=int(rng.integers(len(HAIR_COLOURS))),
        hair_style=str(rng.choice(HAIR_STYLES)),
        eye_colour=int(rng.integers(len(EYE_COLOURS))),
        eye_size=float(rng.uniform(0.07, 0.12)),
        eye_spacing=float(rng.uniform(0.17, 0.26)),
        eye_height=float(rng.uniform(-0.08, 0.04)),
        brow_thickness=float(rng.uniform(0.015, 0.045)),
        brow_tilt=float(rng.uniform(-0.35, 0.35)),
        nose_length=float(rng.uniform(0.12, 0.24)),
        nose_width=float(rng.uniform(0.05, 0.12)),
        mouth_width=float(rng.uniform(0.16, 0.32)),
        lip_colour=int(rng.integers(len(LIP_COLOURS))),
        glasses=str(rng.choice(GLASSES)),
        glasses_colour=int(rng.integers(len(GLASSES_COLOURS))),
        beard=str(rng.choice(BEARDS, p=[0.35, 0.35, 0.15, 0.15])),
        ear_size=float(rng.uniform(0.07, 0.12)),
    )


def _jitter_colour(colour, rng, amount):
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in colour)


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    """A plain, gradient or two-tone background, different in every photo."""
    top = rng.integers(40, 230, size=3)
    bottom = np.clip(top + rng.integers(-70, 70, size=3), 0, 255)
    kind = rng.integers(3)
    if kind == 0:
        bottom = top
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    pixels = top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp
    pixels = np.broadcast_to(pixels, (size, size, 3)).copy()
    if kind == 2:  # a wall edge or door frame somewhere behind the person
        edge = int(rng.integers(size // 5, 4 * size // 5))
        pixels[:, edge:] = pixels[:, edge:] * rng.uniform(0.6, 0.9)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@dataclass(frozen=True)
class _Canvas:
    """Drawing in units of the head's size `s` around its centre (cx, cy)."""

    draw: ImageDraw.ImageDraw
    s: float
    cx: float
    cy: float

    def box(self, x0, y0, x1, y1) -> list[float]:
        return [self.cx + x0 * self.s, self.cy + y0 * self.s, self.cx + x1 * self.s, self.cy + y1 * self.s]

    def point(self, x, y) -> tuple[float, float]:
        return (self.cx + x * self.s, self.cy + y * self.s)

    def width(self, fraction: float) -> int:
        return max(1, int(fraction * self.s))


def _draw_head(draw: ImageDraw.ImageDraw, a: Appearance, s: float, rng: np.random.Generator, expression: float):
    """Draw the person centred on a canvas of side 2*s (coordinates in units of s around the centre). The random
    draws happen in a fixed order (skin, hair, shirt, iris, gaze), so a seed gives the same photo."""
    c = _Canvas(draw, s, s, s * 0.95)
    skin = _jitter_colour(SKIN_TONES[a.skin], rng, 4)
    hair = _jitter_colour(HAIR_COLOURS[a.hair_colour], rng, 4)
    shirt = tuple(int(v) for v in rng.integers(20, 235, size=3))
    _body_and_head(c, a, skin, hair, shirt)
    _beard(c, a, skin, hair)
    _hair(c, a, hair)
    ey = _eyes_and_brows(c, a, hair, rng, expression)
    ny1 = _nose(c, a, skin, ey)
    _mouth(c, a, ny1, expression)
    _glasses(c, a, ey)


def _body_and_head(c: _Canvas, a: Appearance, skin, hair, shirt) -> None:
    hw, hh = 0.5 * a.face_aspect, 0.5  # half-width and half-height of the head
    c.draw.ellipse(c.box(-0.75, 0.72, 0.75, 1.6), fill=shirt)  # shoulders
    c.draw.rectangle(c.box(-0.13, 0.3, 0.13, 0.8), fill=skin)  # neck
    if a.hair_style == "long":
        c.draw.rounded_rectangle(c.box(-hw - 0.1, -hh - 0.05, hw + 0.1, 0.75), radius=0.2 * c.s, fill=hair)
    ear = a.ear_size
    c.draw.ellipse(c.box(-hw - ear * 0.7, -0.1, -hw + ear * 0.5, -0.1 + 2 * ear), fill=skin)
    c.draw.ellipse(c.box(hw - ear * 0.5, -0.1, hw + ear * 0.7, -0.1 + 2 * ear), fill=skin)
    c.draw.ellipse(c.box(-hw, -hh, hw, hh), fill=skin)


def _beard(c: _Canvas, a: Appearance, skin, hair) -> None:
    hw, hh = 0.5 * a.face_aspect, 0.5
    if a.beard == "full":
        c.draw.chord(c.box(-hw, -hh * 0.2, hw, hh), 0, 180, fill=hair)
        c.draw.ellipse(c.box(-0.14, 0.18, 0.14, 0.34), fill=skin)  # mouth area stays visible
    elif a.beard == "stubble":
        stubble = tuple(int(0.55 * k + 0.45 * h) for k, h in zip(skin, hair))
        c.draw.chord(c.box(-hw, -hh * 0.1, hw, hh), 10, 170, fill=stubble)


def _hair(c: _Canvas, a: Appearance, hair) -> None:
    hw, hh = 0.5 * a.face_aspect, 0.5
    style = a.hair_style
    if style in ("short", "long", "fringe", "side_part", "bun"):
        c.draw.chord(c.box(-hw - 0.03, -hh - 0.06, hw + 0.03, hh * 0.2), 180, 360, fill=hair)
    if style == "fringe":
        c.draw.rectangle(c.box(-hw * 0.85, -hh * 0.75, hw * 0.85, -hh * 0.45), fill=hair)
    if style == "side_part":
        c.draw.polygon([c.point(-hw, -hh * 0.6), c.point(hw * 0.3, -hh * 0.95), c.point(hw, -hh * 0.5),
                        c.point(hw, -hh * 0.9)], fill=hair)
    if style == "bun":
        c.draw.ellipse(c.box(-0.15, -hh - 0.3, 0.15, -hh + 0.02), fill=hair)
    if style == "curly":
        for angle in np.linspace(math.pi * 1.05, math.pi * 1.95, 9):
            x, y = hw * 1.0 * math.cos(angle), hh * 0.95 * math.sin(angle)
            c.draw.ellipse(c.box(x - 0.11, y - 0.11, x + 0.11, y + 0.11), fill=hair)


def _eyes_and_brows(c: _Canvas, a: Appearance, hair, rng: np.random.Generator, expression: float) -> float:
    """Whites, iris, pupil and brows; the expression narrows or widens the eyes and raises the brows. Returns the
    eyes' height."""
    ey = -0.05 + a.eye_height
    er = a.eye_size * (1.0 - 0.15 * max(expression, 0.0))
    iris = _jitter_colour(EYE_COLOURS[a.eye_colour], rng, 3)
    gaze = rng.uniform(-0.25, 0.25) * er
    for side in (-1, 1):
        ex = side * a.eye_spacing
        c.draw.ellipse(c.box(ex - er, ey - er * 0.65, ex + er, ey + er * 0.65), fill=(245, 245, 245))
        c.draw.ellipse(c.box(ex + gaze - er * 0.55, ey - er * 0.55, ex + gaze + er * 0.55, ey + er * 0.55), fill=iris)
        c.draw.ellipse(c.box(ex + gaze - er * 0.22, ey - er * 0.22, ex + gaze + er * 0.22, ey + er * 0.22),
                       fill=(5, 5, 5))
        # Brows: thickness and tilt are the person's, how high they sit is the expression.
        by = ey - er - 0.06 - 0.03 * expression
        inner, outer = ex - side * er * 0.2, ex + side * er * 1.3
        tilt = a.brow_tilt * 0.08
        c.draw.line([*c.point(inner, by + tilt), *c.point(outer, by - tilt)], fill=hair,
                    width=max(1, int(a.brow_thickness * c.s)))
    return ey


def _nose(c: _Canvas, a: Appearance, skin, ey: float) -> float:
    """Returns the height of the nose's tip."""
    ny0, ny1 = ey + 0.05, ey + 0.05 + a.nose_length
    nose = tuple(int(k * 0.8) for k in skin)
    c.draw.line([*c.point(0, ny0), *c.point(-a.nose_width * 0.4, ny1)], fill=nose, width=c.width(0.02))
    c.draw.line([*c.point(-a.nose_width * 0.4, ny1), *c.point(a.nose_width * 0.5, ny1)], fill=nose,
                width=c.width(0.02))
    return ny1


def _mouth(c: _Canvas, a: Appearance, ny1: float, expression: float) -> None:
    """A smile, a neutral line or a slight frown, per photo."""
    my = min(ny1 + 0.1, 0.36)
    mw = a.mouth_width * 0.5
    lip = LIP_COLOURS[a.lip_colour]
    curve = 0.08 * expression
    if abs(curve) < 0.01:
        c.draw.line([*c.point(-mw, my), *c.point(mw, my)], fill=lip, width=c.width(0.03))
    elif curve > 0:
        c.draw.arc(c.box(-mw, my - curve, mw, my + curve), 0, 180, fill=lip, width=c.width(0.03))
    else:
        c.draw.arc(c.box(-mw, my + curve, mw, my - curve), 180, 360, fill=lip, width=c.width(0.03))


def _glasses(c: _Canvas, a: Appearance, ey: float) -> None:
    if a.glasses == "none":
        return
    frame = GLASSES_COLOURS[a.glasses_colour]
    gr = a.eye_size * 1.5
    width = c.width(0.025)
    for side in (-1, 1):
        ex = side * a.eye_spacing
        if a.glasses == "round":
            c.draw.ellipse(c.box(ex - gr, ey - gr, ex + gr, ey + gr), outline=frame, width=width)
        else:
            c.draw.rectangle(c.box(ex - gr, ey - gr * 0.75, ex + gr, ey + gr * 0.75), outline=frame, width=width)
    c.draw.line([*c.point(-(a.eye_spacing - gr), ey), *c.point(a.eye_spacing - gr, ey)], fill=frame, width=width)


def render_face(appearance: Appearance, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """One photo of a person: their fixed appearance seen under this photo's conditions."""
    scale = 4  # draw large, then downsample: antialiasing for free
    big = size * scale
    photo = _background(size, rng).resize((big, big), Image.BILINEAR)

    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    expression = float(rng.choice([-0.5, 0.0, 0.5, 1.0]) + rng.normal(0, 0.15))
    _draw_head(ImageDraw.Draw(layer), appearance, big / 2, rng, expression)

    zoom = rng.uniform(0.8, 1.05)
    layer = layer.resize((int(big * zoom), int(big * zoom)), Image.BILINEAR)
    layer = layer.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR, expand=False)
    dx = int(rng.uniform(-0.08, 0.08) * big + (big - layer.width) / 2)
    dy = int(rng.uniform(-0.06, 0.08) * big + (big - layer.height) / 2)
    photo.paste(layer, (dx, dy), layer)

    photo = photo.resize((size, size), Image.LANCZOS)
    if rng.random() < 0.3:
        photo = photo.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.8))))
    return _light_and_noise(photo, rng)


def _light_and_noise(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Exposure, a light falling from one side, a colour cast, and sensor noise."""
    pixels = np.asarray(photo, dtype=np.float32)
    size = pixels.shape[0]
    exposure = rng.uniform(0.7, 1.25)
    direction = rng.uniform(-0.25, 0.25)
    ramp = 1.0 + direction * np.linspace(-1.0, 1.0, size)[None, :, None]
    cast = 1.0 + rng.normal(0, 0.04, size=3)[None, None, :]
    pixels = pixels * exposure * ramp * cast + rng.normal(0, rng.uniform(2, 9), size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
